"""`klingbridge demo`: one sound through both vendors, on the built-in simulator, offline.

It is the README's first command: no keys, no network, a few seconds, real audio files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .client import AsyncClient, Client
from .config import Config
from .download import SavedFile, save_outputs
from .flows import PollPolicy
from .models import SoundRequest, Task
from .render import add_row, amount_text
from .render import table as fold_table
from .simulator import SimulatorConfig, running_simulator

PROVIDERS = ("kling", "piapi")


Results = list[tuple[Task, list[SavedFile]]]


def run_demo(*, out_dir: Path, prompt: str, duration: float, console: Console) -> Results:
    sim_config = SimulatorConfig(queued_s=0.3, running_s=1.2)
    request = SoundRequest(prompt=prompt, duration=duration)
    check_request(request)
    with running_simulator(sim_config) as sim:
        console.print(f"simulator running at {sim.base_url} (both vendors' APIs, offline)")
        settings = {
            "kling": {
                "base_url": sim.base_url,
                "access_key": sim_config.kling_access_key,
                "secret_key": sim_config.kling_secret_key,
            },
            "piapi": {"base_url": sim.base_url, "api_key": sim_config.piapi_api_key},
        }
        config = Config(providers=settings)
        poll = PollPolicy(initial=0.25, factor=1.5, maximum=1.0)
        with console.status(f"generating '{prompt}' ({duration:g} s) on {', '.join(PROVIDERS)}…"):
            tasks = asyncio.run(_generate_all(config, poll, request))
            results = [(task, save_outputs(task, out_dir, overwrite=True)) for task in tasks]
    console.print(_side_by_side(results))
    console.print(f"\nsaved {sum(len(s) for _, s in results)} files in {out_dir.resolve()}:")
    for _, saved in results:
        for file in saved:
            console.print(f"  {file.path}  ({file.bytes:,} bytes)")
    return results


def check_request(request: SoundRequest) -> None:
    """Raise what either vendor would refuse (`ValidationError`), before the simulator starts:
    the demo runs the request on both (`--duration 3` suits kling, not piapi)."""
    with Client(config=Config(), store=None) as client:
        for name in PROVIDERS:
            client.provider(name).validate(request)


def demo_json(results: Results) -> dict[str, Any]:
    """`demo --json`: both tasks and every saved file, as one object."""
    return {
        "tasks": [task.model_dump(mode="json") for task, _ in results],
        "saved": [
            {"provider": task.provider, "path": str(f.path), "format": f.format, "bytes": f.bytes}
            for task, saved in results
            for f in saved
        ],
    }


async def _generate_all(config: Config, poll: PollPolicy, request: SoundRequest) -> list[Task]:
    """Both vendors at once: the async client shares all its logic with the sync one.

    Nothing goes in the task store: the simulator's tasks and charges are not the user's (they
    would count in `tasks` and the dashboard's spend, and a worker would chase them at the
    real vendors, the simulator gone)."""
    async with AsyncClient(config=config, poll=poll, store=None) as client:
        runs = (client.run(request, provider=name, timeout=60) for name in PROVIDERS)
        return list(await asyncio.gather(*runs))


def _side_by_side(results: list[tuple[Task, list[SavedFile]]]) -> Table:
    title = "one sound request, two vendors, one result type"
    table = fold_table("", *(task.provider for task, _ in results), title=title)
    rows: dict[str, list[str]] = {
        "status": [],
        "vendor status": [],
        "task id": [],
        "outputs": [],
        "duration": [],
        "files": [],
        "cost (vendor)": [],
        "cost (USD)": [],
    }
    for task, saved in results:
        cost = task.cost
        durations = {o.duration_s for o in task.outputs if o.duration_s is not None}
        rows["status"].append(task.status.value)
        rows["vendor status"].append(str(task.provider_status))
        rows["task id"].append(task.id)
        rows["outputs"].append(str(len(task.outputs)))
        rows["duration"].append(", ".join(f"{d:g} s" for d in sorted(durations)) or "-")
        rows["files"].append(
            ", ".join(sorted({f.format for f in task.files})) + f" ({len(saved)} saved)"
        )
        rows["cost (vendor)"].append(amount_text(cost) if cost else "-")
        rows["cost (USD)"].append(f"${cost.usd:.4f}" if cost and cost.usd is not None else "-")
    for label, values in rows.items():
        add_row(table, label, *values)
    return table
