"""Export: torch -> ONNX (with parity), precision (fp16 / int8 Q/DQ), the quality gate, TensorRT engines.

Modules, each small and importable on its own (none imports torch or onnx at import time):

* :mod:`.onnx`     - torch -> ONNX, fixed I/O names, dynamic or static shapes, parity vs torch
* :mod:`.quantize` - the ONLY place precision enters a graph: fp16 ONNX, int8 Q/DQ ONNX, calibration
* :mod:`.gate`     - PSNR on a test set through onnxruntime vs fp32; the tolerance per precision
* :mod:`.cache`    - cache directory, ONNX and engine cache keys (file name = key)
* :mod:`.artifacts` - the ONNX file of a model at a precision, from the cache or made now (+ JSON sidecar)
* :mod:`.trt`      - TensorRT engine build / load from the ONNX (tensorrt imported lazily)
"""
