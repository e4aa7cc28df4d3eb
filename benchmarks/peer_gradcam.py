"""The bare peer: what a user would write instead of our service, to compare explain throughput with.

One FastAPI endpoint around pytorch-grad-cam on the same weights, computed synchronously: decode the uploaded
PNG, run Grad-CAM on the model's CAM layer, answer the prediction, probabilities and the CAM as JSON.
No queue, no database, no object store, no tenants. Run it like the API (one uvicorn process):

    PEER_RUN_DIR=path/to/run uvicorn peer_gradcam:app --app-dir benchmarks --port 8001
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, UploadFile
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from batchcam.cam.split import resolve_layer
from batchcam.weights import load_model

RUN_DIR = Path(os.environ.get("PEER_RUN_DIR", "."))
model, spec = load_model(RUN_DIR / "model.safetensors")
model.eval()
cam = GradCAM(
    model=model, target_layers=[dict(model.named_modules())[resolve_layer(model, spec.target_layer)]]
)
app = FastAPI()


@app.post("/explain")
async def explain(file: UploadFile) -> dict[str, object]:
    # Computed on the event loop, one request at a time: GradCAM's hooks are not thread-safe.
    mode = "L" if spec.in_channels == 1 else "RGB"
    pixels = np.asarray(Image.open(io.BytesIO(await file.read())).convert(mode)).reshape(*spec.input_size, -1)
    image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    with torch.no_grad():
        probabilities = torch.softmax(model(image), dim=1)[0]
    predicted = int(probabilities.argmax())
    heatmap = cam(input_tensor=image, targets=[ClassifierOutputTarget(predicted)])[0]
    return {"predicted": predicted, "probabilities": probabilities.tolist(), "cam": heatmap.tolist()}
