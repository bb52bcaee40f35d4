"""The experiments behind the lecture notebooks, one module per lecture, each result cached (``store``).

- ``pruning``: notebook 02 (pruning curves, layer sensitivity, retraining, an LSTM);
- ``sharing``: notebook 03 (accuracy vs bits, centroid initialization, trained quantization, SVD);
- ``coding``: notebook 04 (the full pipeline's runs, the papers' Tables 1 and 2, Huffman's losses);
- ``squeezenet``: notebook 05 (architecture accounting, FireNet and SqueezeNet compressed).
"""
