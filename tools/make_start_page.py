"""Write notebooks/00_start_here.ipynb (run once; the notebook is committed)."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

nb = new_notebook(cells=[
    new_markdown_cell(
        "# dclab: Deep Compression, interactively\n\n"
        "Neural networks can be made 10-50x smaller with **pruning**, **weight sharing** "
        "(trained k-means quantization) and **Huffman coding**, and compact architectures such as "
        "**SqueezeNet** get there by design. These notebooks follow Song Han's lecture "
        "*Efficient Methods and Hardware for Deep Learning* (Stanford CS231n, 2017) and his papers "
        "*Learning both Weights and Connections* (NIPS 2015) and *Deep Compression* (ICLR 2016).\n\n"
        "Every size shown is the byte count of a real compressed file (`.dcz`) that decompresses back to "
        "the same weights and the same accuracy; every accuracy is measured on the 10,000 MNIST test digits."
    ),
    new_markdown_cell("## The lectures, in order\n\nOpen one as a dashboard, or in JupyterLab to read and change the code."),
    new_code_cell(
        "from IPython.display import HTML\n"
        "from dclab.lectures import table_of_contents_html\n\n"
        "HTML(table_of_contents_html())"
    ),
    new_markdown_cell(
        "## Before you start\n\n"
        "The notebooks train two small baselines on MNIST the first time they need them (a few minutes on a "
        "laptop CPU, with a progress bar) and cache them. `python -m dclab prepare` does it all up front."
    ),
    new_code_cell(
        "from dclab.paths import cache_dir, data_root\n\n"
        "print('MNIST data root:', data_root())\n"
        "print('cache (trained baselines):', cache_dir())"
    ),
])
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, "notebooks/00_start_here.ipynb")
