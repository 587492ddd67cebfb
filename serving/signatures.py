"""The serving contract of f_d: one place for every name a client or server must agree on.

Imported by the SavedModel exporter, the in-project server, the gRPC client and the TFLite
exporter, so that a renamed key cannot silently break one side of the wire.
"""

from __future__ import annotations

# Default name under which f_d is served (TF Serving's --model_name, the layout's sub-folder).
MODEL_NAME = "degrader"
# The signature TF Serving uses when a request leaves model_spec.signature_name empty.
SIGNATURE_KEY = "serving_default"
# Input: uint8 RGB frames [N, H, W, 3], any H, W >= 1; output: uint8 degraded frames of the
# same shape. The graph pads H and W to what f_d needs and crops back (serving.export).
INPUT_KEY = "frames"
OUTPUT_KEY = "degraded"
# What tf.saved_model writes for a tf.function signature; TF Serving's Predict accepts it.
METHOD_NAME = "tensorflow/serving/predict"
# The only GetModelMetadata field TF Serving supports.
METADATA_FIELD = "signature_def"
# The SavedModel's no-argument function returning the multiple its graph pads H and W to
# (4, or 8 for the pyramid f_d); serving.server budgets padded pixels with it. Not a signature.
SPATIAL_MULTIPLE_FN = "spatial_multiple"
# The largest multiple any f_d variant pads to (tfprivacy.models.degrader.variant_multiple):
# serving.client sizes its requests with it, so they fit the server's padded-pixel cap.
MAX_SPATIAL_MULTIPLE = 8
# Default cap of serving.server's --max_request_pixels (frames x height x width per Predict):
# 16 frames of 1024 x 1024, a little below what the 64 MiB message limit lets through in uint8.
# serving.client sizes its requests to fit it.
MAX_REQUEST_PIXELS = 16 * 1024 * 1024
# TF Serving's config file, written next to the model folders.
MODELS_CONFIG = "models.config"
