#!/usr/bin/env bash
# Redraw the README's pictures and tables in docs/ (the README's own commands write to
# the current directory instead, so following the README never changes docs/).
# Run from anywhere; needs matplotlib (pip install -e ".[dev]" has it). Takes ~2 minutes.
# Every output is reproducible (seeded runs, no wall times, no dates in the PNGs): on a
# fresh clone this script changes nothing. The README's compare table is
# docs/compare_optimizers.md word for word (tests/test_docs.py checks it), and the plotted
# values of the lr pictures are kept next to them as CSV (the suite recomputes them).
set -euo pipefail
cd "$(dirname "$0")/.."
lit-optim plot --config configs/digits_poly.yaml -o docs/lr_digits_poly.png --momentum \
  --data "docs/lr_digits_poly.csv"
lit-optim plot --config configs/digits_layer_decay_cosine.yaml -o docs/lr_layer_decay_cosine.png \
  --log --data "docs/lr_layer_decay_cosine.csv"
lit-optim plot --config configs/digits_poly.yaml --config docs/join_momentum_wd.yaml \
  -o docs/join_momentum_wd.png --momentum --weight-decay --data "docs/join_momentum_wd.csv"
lit-optim groups --config configs/digits_layer_decay_cosine.yaml > docs/groups.txt
lit-optim lr-find --config configs/digits_layer_decay_cosine.yaml -o docs/lr_find.png
lit-optim compare --optim configs/compare/sgd.yaml --optim configs/compare/momentum.yaml \
  --optim configs/compare/rmsprop.yaml --optim configs/compare/adam.yaml \
  --no-timing -o docs/compare_optimizers.png
