"""The networks stage: what a trained network is and what is done with it. The network file
(storage.py), ensembles and their vote (ensembles.py), evaluating and predicting with a stored
network (inference.py), and exporting it as a C header (export_c.py) or an ONNX model
(export_onnx.py)."""
