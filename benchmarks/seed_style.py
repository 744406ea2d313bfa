"""The seed notebook's code, the way it runs it, as a script: the baseline.

Seven Titanic variants (a DataLoader over a TensorDataset, torch's default threads, `.item()`
each step, tqdm bars, a print per epoch; the scaler fitted before the split, as the seed did)
and the Iris alpha sweep (a sequential loop, each frame a new figure through a PNG buffer).
With --track it adds MLflow logging the way MLflow's documentation shows it: log_params,
log_metric each epoch, mlflow.pytorch.log_model with its defaults, the GIF as an artifact.

    python -m benchmarks.seed_style CSV [--track URI] [--only titanic|iris] [--epochs N]
"""
import argparse
import sys
import time
import warnings
from io import BytesIO

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch.optim import Adam
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm


class SimpleMLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_hidden_layers=1, last_layer_activation_fn=nn.ReLU):
        super().__init__()
        layers = [nn.Linear(input_dim, hidden_dim), nn.ReLU()]
        for _ in range(num_hidden_layers - 1):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        layers.append(nn.Linear(hidden_dim, output_dim))
        if last_layer_activation_fn is not None:
            layers.append(last_layer_activation_fn())
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class SimpleMLPTrainer:
    def __init__(self, model, criterion, optimizer, log=None):
        self.model, self.criterion, self.optimizer, self.log = model, criterion, optimizer, log

    def train(self, train_loader, num_epochs):
        self.model.train()
        losses = []
        for epoch in range(num_epochs):
            current_loss = 0
            for inputs, targets in tqdm(train_loader, desc=f"Epoch {epoch+1}/{num_epochs}", file=sys.stderr):
                self.optimizer.zero_grad()
                loss = self.criterion(self.model(inputs), targets)
                loss.backward()
                self.optimizer.step()
                current_loss += loss.item()
            avg_loss = current_loss / len(train_loader)
            losses.append(avg_loss)
            print(f"Epoch [{epoch+1}/{num_epochs}], Loss: {avg_loss:.4f}")
            if self.log:
                self.log.log_metric("train_loss", avg_loss, step=epoch)
        return losses

    def evaluate(self, val_loader):
        self.model.eval()
        total_loss, correct, total = 0, 0, 0
        with torch.no_grad():
            for x, y in val_loader:
                outputs = self.model(x)
                total_loss += self.criterion(outputs, y).item()
                if outputs.shape[1] == 2:
                    predictions = torch.argmax(outputs, dim=1)
                    y = torch.argmax(y, dim=1) if y.dim() > 1 else y
                else:
                    predictions = (outputs >= 0.5).float().squeeze()
                    y = y.squeeze()
                correct += (predictions == y).sum().item()
                total += y.size(0)
        return total_loss / len(val_loader), correct / total


def loaders(csv, target):
    data = pd.read_csv(csv, na_values=["?"])
    data = data.rename(columns={c: c.capitalize() for c in data.columns if c in ("pclass", "sex", "age", "fare",
                                                                                "survived")})
    data = data[["Pclass", "Sex", "Age", "Fare", "Survived"]].dropna()
    data["Sex"] = data["Sex"].map({"male": 0, "female": 1})
    X = StandardScaler().fit_transform(data[["Pclass", "Sex", "Age", "Fare"]].values)
    X = torch.tensor(X, dtype=torch.float32)
    y = data["Survived"].values
    if target == "float":
        y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    elif target == "index":
        y = torch.tensor(y, dtype=torch.long).squeeze()
    else:
        y = F.one_hot(torch.tensor(y, dtype=torch.long), num_classes=2).float()
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=42)
    return (DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True),
            DataLoader(TensorDataset(X_val, y_val), batch_size=32), X_val)


VARIANTS = [  # name, loss, last activation, target, outputs
    ("l1", nn.L1Loss, nn.Sigmoid, "float", 1), ("mse", nn.MSELoss, nn.Sigmoid, "float", 1),
    ("nll_relu", nn.NLLLoss, nn.ReLU, "index", 2),
    ("nll_logsoftmax", nn.NLLLoss, lambda: nn.LogSoftmax(dim=1), "index", 2),
    ("cross_entropy", nn.CrossEntropyLoss, None, "index", 2),
    ("kldiv_relu", lambda: nn.KLDivLoss(reduction="batchmean"), nn.ReLU, "onehot", 2),
    ("kldiv_logsoftmax", lambda: nn.KLDivLoss(reduction="batchmean"), lambda: nn.LogSoftmax(dim=1), "onehot", 2),
]


def titanic(csv, epochs, mlflow=None):
    for name, loss, activation, target, outputs in VARIANTS:
        train_loader, val_loader, X_val = loaders(csv, target)
        model = SimpleMLP(4, 64, outputs, 2, last_layer_activation_fn=activation)
        run = mlflow.start_run(run_name=name) if mlflow else None
        if mlflow:
            mlflow.log_params({"loss": name, "hidden_dim": 64, "lr": 0.001, "batch_size": 32, "epochs": epochs})
        trainer = SimpleMLPTrainer(model, loss(), Adam(model.parameters(), lr=0.001), log=mlflow)
        trainer.train(train_loader, num_epochs=epochs)
        val_loss, accuracy = trainer.evaluate(val_loader)
        print(f"Validation Loss: {val_loss:.4f}, Accuracy: {accuracy:.2f}%")
        if mlflow:
            mlflow.log_metrics({"val_loss": val_loss, "val_accuracy": accuracy})
            mlflow.pytorch.log_model(model, name="model", input_example=X_val[:5].numpy())
            mlflow.end_run()
        del run


def iris(mlflow=None, gif="mlp_classification_boundaries.gif"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore")
    data = load_iris()
    X = data.data[data.target != 2][:, [0, 2]]
    y = data.target[data.target != 2]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)
    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)

    def plot_decision_boundary(model, X, y, alpha):
        x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
        y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
        xx, yy = np.meshgrid(np.linspace(x_min, x_max, 100), np.linspace(y_min, y_max, 100))
        Z = model.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.contourf(xx, yy, Z, alpha=0.3, levels=[-0.1, 0.1, 1.1], colors=["blue", "red"])
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="bwr", edgecolor="k", s=50)
        ax.set_title(f"MLP Decision Boundary (alpha={alpha})")
        ax.set_xticks([])
        ax.set_yticks([])
        plt.tight_layout()
        buf = BytesIO()
        plt.savefig(buf, format="png")
        plt.close(fig)
        buf.seek(0)
        return Image.open(buf)

    images = []
    for idx, alpha in enumerate(np.logspace(-3, 3, 20)):
        print(f"Processing alpha={alpha:.4f} ({idx + 1}/20)")
        mlp = MLPClassifier(hidden_layer_sizes=(10,), alpha=alpha, max_iter=1000, random_state=42)
        mlp.fit(X_train, y_train)
        images.append(plot_decision_boundary(mlp, X_train, y_train, alpha))
    images[0].save(gif, save_all=True, append_images=images[1:], duration=500, loop=0)
    if mlflow:
        with mlflow.start_run(run_name="alpha-sweep"):
            mlflow.log_artifact(gif)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--track", metavar="URI")
    parser.add_argument("--only", choices=("titanic", "iris"))
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    mlflow = None
    if args.track:
        import mlflow
        import mlflow.pytorch

        mlflow.set_tracking_uri(args.track)
        mlflow.set_experiment("seed-style")
    start = time.perf_counter()
    if args.only != "iris":
        titanic(args.csv, args.epochs, mlflow)
    if args.only != "titanic":
        iris(mlflow)
    print(f"seed_style: {time.perf_counter() - start:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
