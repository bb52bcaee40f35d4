"""Bytes: the codes and the ``.dcz`` file that every compressed size in dclab is measured from (notebook 04).

- ``sparse``: relative indices (gaps) with filler entries, and a pruned layer's sparse encoding;
- ``huffman``: canonical Huffman codes, encode and decode;
- ``ans``: ANS coding with a small frequency table, the ``.dcz`` version-3 option past Huffman (notebook 07);
- ``container``: the ``.dcz`` format (docs/dcz-format.md), written and read back, never executing code;
- ``entropy``: the streams of a ``.dcz`` under other coders (ANS, zlib, lzma) and the entropy bound.
"""
