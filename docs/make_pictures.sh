#!/usr/bin/env bash
# Redraw the README's pictures and tables in docs/ (the README's own commands write to
# the current directory instead, so following the README never changes docs/).
# Run from anywhere; needs matplotlib (pip install -e ".[dev]" has it). Takes ~2 minutes.
# The compare table in the README is copied by hand from docs/compare_optimizers.md;
# regenerate it on an otherwise idle machine (it has wall times).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"  # the plotted values (CSV) are not kept
trap 'rm -rf "$scratch"' EXIT

lit-optim plot --config configs/digits_poly.yaml -o docs/lr_digits_poly.png --momentum \
  --data "$scratch/lr_digits_poly.csv"
lit-optim plot --config configs/digits_layer_decay_cosine.yaml -o docs/lr_layer_decay_cosine.png \
  --log --data "$scratch/lr_layer_decay_cosine.csv"
lit-optim plot --config configs/digits_poly.yaml --config docs/join_momentum_wd.yaml \
  -o docs/join_momentum_wd.png --momentum --weight-decay --data "$scratch/join_momentum_wd.csv"
lit-optim groups --config configs/digits_layer_decay_cosine.yaml > docs/groups.txt
lit-optim lr-find --config configs/digits_layer_decay_cosine.yaml -o docs/lr_find.png
lit-optim compare --optim configs/compare/sgd.yaml --optim configs/compare/momentum.yaml \
  --optim configs/compare/rmsprop.yaml --optim configs/compare/adam.yaml \
  -o docs/compare_optimizers.png
