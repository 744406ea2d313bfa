"""Losses of the project's own, and of yours: a variant names one as `losses.<module>:<Name>` (a
class made with the variant's `loss_args`, or a function given them) with `wants:` saying what it
reads. Each takes one model's outputs, (rows, classes), and its targets, and returns the mean over
the rows; the study batches it over the replicas itself (torch.func.vmap). docs/variants.md says
how to add one; the train stages depend on this folder, and a variant on its own module's file."""
