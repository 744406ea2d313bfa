"""The loss study's training: what each loss does, the model, batched training of every variant's
replicas on each dataset, where it runs, and the diagnosis of each replica."""
