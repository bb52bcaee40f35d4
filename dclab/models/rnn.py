"""A small LSTM that reads an MNIST digit row by row (notebook 02: pruning a recurrent network).
"""
from __future__ import annotations

import torch
from torch import nn

from dclab.codec.sparse import decode_gaps, decode_pruned, encode_gaps, encode_pruned  # noqa: F401  (re-exported)


class RowLSTM(nn.Module):
    """An LSTM reading a digit's 28 rows, one per time step; gates as ``nn.Linear`` (notebook 02).

    ``ih`` (input to gates) and ``hh`` (hidden to gates) are plain Linear layers, so
    ``dclab.algorithms.prune`` masks and its ``Pruner`` work on them unchanged.
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = nn.Linear(28, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)
        self.fc = nn.Linear(hidden, 10)
        with torch.no_grad():
            self.ih.bias.zero_()
            self.ih.bias[hidden : 2 * hidden] = 1.0  # forget gate open at the start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], 28, 28)
        gates_x = self.ih(rows)
        h = x.new_zeros(x.shape[0], self.hidden)
        c = torch.zeros_like(h)
        for t in range(rows.shape[1]):
            i, f, g, o = (gates_x[:, t] + self.hh(h)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.fc(h)
