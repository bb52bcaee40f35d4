"""The lecture notebooks in order, with one line each: the app's table of contents."""
from __future__ import annotations

from html import escape
from typing import NamedTuple


class Lecture(NamedTuple):
    notebook: str
    title: str
    summary: str


LECTURES = [
    Lecture("01_hardware_and_number_formats.ipynb", "Hardware and number formats",
            "Why compression matters: a roofline measured on your machine, the energy of a DRAM read, and fp32 to fp8 bit by bit."),
    Lecture("02_pruning.ipynb", "Pruning",
            "Drop the small weights, retrain the rest: drag the threshold and watch accuracy and the sparse file size."),
    Lecture("03_weight_sharing.ipynb", "Weight sharing",
            "Trained k-means quantization: a few shared weights per layer, and a codebook fine-tuned by grouped gradients."),
    Lecture("04_huffman_coding.ipynb", "Huffman coding",
            "Frequent symbols get short codes: the last 20-30% of Deep Compression, and the papers' tables reproduced."),
    Lecture("05_squeezenet.ipynb", "SqueezeNet",
            "Small by design: Fire modules, the design space, and SqueezeNet plus Deep Compression."),
    Lecture("06_deep_compression_dashboard.ipynb", "The Deep Compression dashboard",
            "The capstone: prune, share and Huffman-code a LeNet live, and download the real .dcz file."),
]
START_PAGE = "00_start_here.ipynb"


def table_of_contents_html() -> str:
    """The start page's list of lectures, each linked to its dashboard."""
    items = "\n".join(
        f'<li><a href="{escape(lec.notebook)}"><b>{i}. {escape(lec.title)}</b></a>: {escape(lec.summary)}</li>'
        for i, lec in enumerate(LECTURES, start=1)
    )
    return f'<ol class="dclab-lectures" style="font-size:1.1em;line-height:1.8">\n{items}\n</ol>'
