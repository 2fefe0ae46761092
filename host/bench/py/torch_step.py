"""PyTorch eager reference for `infra-bench --only training`: the same MLP, batch, optimizer
and thread count as the tch side; prints the median seconds per training step."""
import sys
import time

import torch

def main() -> None:
    steps, batch, hidden, threads = (int(a) for a in sys.argv[1:5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs = torch.rand(batch, 64) * 16
    ys = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.functional.cross_entropy

    def step() -> None:
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()
        opt.step()

    for _ in range(200):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    print(times[len(times) // 2])

if __name__ == "__main__":
    main()
