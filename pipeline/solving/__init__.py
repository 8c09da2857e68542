"""The solving stage: everything that produces or changes an integer network's weights. One
checked MIP solve (solve.py), one batch's solve from the shared start (batches.py), the gradient
start (heuristic.py), merging the batches' networks into one (merge.py), and the MIP local searches
that improve a network (improve.py) or make it smaller (compress.py)."""
