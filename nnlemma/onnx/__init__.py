"""Helpers of the ONNX importer (:func:`nnlemma.onnx_import.load_onnx`), one job per module.

* :mod:`.reader`   -- size-limited reading and parsing of untrusted files, confined external data;
* :mod:`.tensors`  -- TensorProto -> numpy, float32 rounding, the non-finite check;
* :mod:`.support`  -- the ONNX attribute schema and the whole-model scan for unsupported content;
* :mod:`.convert`  -- one converter per supported ONNX op, emitting IR equations via the Builder.
"""
