"""Training with the Batch-CAM objective: config, device choice, loop, checkpoints, callbacks."""

from batchcam.device import Execution, select_execution
from batchcam.spec.training import TrainConfig
from batchcam.training.callbacks import Callback, CheckpointToFile
from batchcam.training.progress import EpochMetrics, Progress
from batchcam.training.state import TrainingState
from batchcam.training.trainer import Trainer, TrainResult

__all__ = [
    "Callback",
    "CheckpointToFile",
    "EpochMetrics",
    "Execution",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingState",
    "select_execution",
]
