"""The Iris alpha sweep: data, one fit per L2 penalty, the GIF of the decision boundary."""
