"""dclab: Deep Compression, interactively.

Pruning, trained quantization (weight sharing) and Huffman coding, after Song Han's
CS231n lecture "Efficient Methods and Hardware for Deep Learning" and his papers,
with a real compressed file format (``.dcz``) whose byte count is the size we show.

Vocabulary, used the same way in every module and notebook:

- ``w``: a weight tensor; ``mask``: bool tensor like ``w``, True = kept
- ``sparsity``: fraction of weights removed; ``density``: fraction kept
- ``quality``: pruning threshold in units of the layer's standard deviation
- ``bits``: bits per codebook index (2**bits shared weights); ``n_clusters``: k-means centroids
- ``codebook``: centroids plus ``indices`` (one per weight)
- ``gap_bits``: bits per relative position (``gaps``) in sparse storage
- ``payload_bytes``: bytes of coded data, without headers

Layers: core (errors, hardware, numformats, prune, quantize, lowrank, sparse, huffman,
container) -> paths, data, models, train, zoo, pipeline -> viz -> widgets -> notebooks.
See docs/architecture.md.
"""
from dclab.errors import DataNotFoundError, DclabError, DczFormatError

__version__ = "0.1.0"
__all__ = ["DclabError", "DataNotFoundError", "DczFormatError", "pretrained", "__version__"]


def __getattr__(name: str):
    # ``dclab.pretrained`` is imported on first use, so importing the core stays light
    if name == "pretrained":
        from dclab.zoo import pretrained

        return pretrained
    raise AttributeError(f"module 'dclab' has no attribute {name!r}")
