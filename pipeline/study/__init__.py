"""The Titanic study: data, batched training of every loss variant, its statistics and report."""
