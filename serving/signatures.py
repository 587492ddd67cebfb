"""The serving contract of f_d: one place for every name a client or server must agree on.

Imported by the SavedModel exporter, the in-project server, the gRPC client and the TFLite
exporter, so that a renamed key cannot silently break one side of the wire.
"""

from __future__ import annotations

# Default name under which f_d is served (TF Serving's --model_name, the layout's sub-folder).
MODEL_NAME = "degrader"
# The signature TF Serving uses when a request leaves model_spec.signature_name empty.
SIGNATURE_KEY = "serving_default"
# Input: uint8 RGB frames [N, H, W, 3]; output: uint8 degraded frames of the same shape.
INPUT_KEY = "frames"
OUTPUT_KEY = "degraded"
# What tf.saved_model writes for a tf.function signature; TF Serving's Predict accepts it.
METHOD_NAME = "tensorflow/serving/predict"
# The only GetModelMetadata field TF Serving supports.
METADATA_FIELD = "signature_def"
# f_d downsamples twice by 2 and upsamples back, so H and W must be multiples of this.
SPATIAL_DIVISOR = 4
# Default cap of serving.server's --max_request_pixels (frames x height x width per Predict):
# 16 frames of 1024 x 1024, a little below what the 64 MiB message limit lets through in uint8.
# serving.client sizes its requests to fit it.
MAX_REQUEST_PIXELS = 16 * 1024 * 1024
# TF Serving's config file, written next to the model folders.
MODELS_CONFIG = "models.config"
