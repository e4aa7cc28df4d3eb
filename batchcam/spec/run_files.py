"""The names of a run folder's files: the contract between whoever trains and whoever serves a model."""

MODEL_FILE = "model.safetensors"
PROTOTYPES_FILE = "prototypes.safetensors"  # tensors "prototypes" and "cam_prototypes", C×H×W
REPORT_FILE = "report.json"
CHECKPOINT_FILE = "checkpoint.pt"
