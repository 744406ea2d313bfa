"""The study's splits and replicas: split 0 is the notebook's, each split standardized on its own."""
import numpy as np
from sklearn.model_selection import train_test_split

from pipeline.data.splits import Replica, make_splits, replicas, split_arrays


def rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(1, 4, n), rng.integers(0, 2, n), rng.uniform(1, 70, n),
                         rng.exponential(30, n)]).astype(np.float64)
    return x, rng.integers(0, 2, n).astype(np.int64)


def prepared(count=4, seed=42, n=200):
    x, y = rows(n)
    train, val = make_splits(n, 0.2, seed, count)
    return {"x": x, "y": y, "train_index": train, "val_index": val}


def test_replicas_are_seeds_nested_in_splits_and_replica_0_is_the_canonical_run():
    # Replica (j, k), seed-major: seed 42 + j + 2k, so no two replicas share a seed.
    assert replicas(42, 2, 3) == [Replica(42, 0), Replica(44, 1), Replica(46, 2),
                                  Replica(43, 0), Replica(45, 1), Replica(47, 2)]
    assert replicas(7, 1, 1) == [Replica(7, 0)]
    default = replicas(42, 5, 20)
    assert len({r.seed for r in default}) == 100 and default[0] == Replica(42, 0)


def test_split_0_is_the_notebooks_split_with_the_scaler_fitted_on_train():
    data = prepared()
    x_train, x_val, y_train, y_val = train_test_split(data["x"], data["y"], test_size=0.2, random_state=42)
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    split = split_arrays(data, 0)
    assert np.array_equal(split["x_train"], ((x_train - mean) / scale).astype(np.float32))
    assert np.array_equal(split["x_val"], ((x_val - mean) / scale).astype(np.float32))
    assert np.array_equal(split["y_train"], y_train) and np.array_equal(split["y_val"], y_val)


def test_every_split_partitions_the_rows_and_differs_from_the_others():
    data = prepared(count=5)
    train, val = data["train_index"], data["val_index"]
    assert train.shape == (5, 160) and val.shape == (5, 40)
    for k in range(5):
        assert sorted(np.concatenate([train[k], val[k]])) == list(range(200))
    assert len({tuple(sorted(v)) for v in val}) == 5
    # Split k is what random_state seed + k gives.
    assert np.array_equal(val[3], train_test_split(np.arange(200), test_size=0.2, random_state=45)[1])


def test_each_split_is_standardized_with_its_own_training_part():
    data = prepared(count=3)
    for k in range(3):
        split = split_arrays(data, k)
        assert np.allclose(split["x_train"].mean(axis=0), 0, atol=1e-5)
        assert np.allclose(split["x_train"].std(axis=0), 1, atol=1e-4)
        assert not np.allclose(split["x_val"].mean(axis=0), 0, atol=1e-3)
    raw = split_arrays(data, 1, standardize=False)
    assert np.array_equal(raw["x_train"], data["x"][data["train_index"][1]].astype(np.float32))


def test_a_constant_column_stays_constant():
    data = prepared()
    data["x"][:, 1] = 1.0
    assert np.all(split_arrays(data, 0)["x_train"][:, 1] == 0)
