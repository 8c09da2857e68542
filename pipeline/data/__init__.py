"""The data stage: datasets in, network-ready arrays out. Reading the three shipped datasets (the
gzip files beside these modules, provenance in README.md here) and the user's own files
(datasets.py), turning raw rows into inputs in [0, 1] on a fixed grid (preprocessing.py), and the
stratified train / validation / test splits and training batches (splits.py)."""
