"""Run the web app, the worker, the bank simulator and the timestamp authority together; stop all when one stops
or on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.platform.config import DEFAULT_BANKS, instance_path_from_env

GRACE_S = 10.0
TSA_PORT = 5002


def platform_commands(web_port: int, sim_port: int, tsa_port: int = TSA_PORT) -> dict[str, list[str]]:
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    return {
        "银行模拟器": [*flask, "bank-sim", "serve", "--port", str(sim_port)],
        "时间戳服务": [*flask, "tsa", "serve", "--port", str(tsa_port)],
        "worker": [*flask, "worker"],
        "web": [*flask, "run", "--host", "127.0.0.1", "--port", str(web_port), "--no-debugger", "--no-reload"],
    }


def supervise(commands: dict[str, list[str]], env: dict[str, str], say: Callable[[str], None]) -> int:
    """Start every command; when any exits or a stop signal comes, stop the rest. Returns the first exit code."""
    stopping: list[int] = []

    def on_signal(number: int, _frame: object) -> None:
        stopping.append(number)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    processes = {name: subprocess.Popen(command, env=env) for name, command in commands.items()}
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                say(f"{name} 已退出（代码 {process.returncode}），正在停止其余进程")
                exit_code = process.returncode or 1
                stopping.append(0)
                break
        time.sleep(0.2)
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + GRACE_S
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} 未在 {GRACE_S:.0f} 秒内退出，强制结束")
            process.kill()
    say("全部进程已停止")
    return exit_code


def run_platform(web_port: int, sim_port: int, say: Callable[[str], None], tsa_port: int = TSA_PORT) -> int:
    env = {**os.environ}
    for code in DEFAULT_BANKS:  # every simulated bank lives on the simulator's port
        env.setdefault(f"CUNGUAN_BANK_{code.upper()}_URL", f"http://127.0.0.1:{sim_port}/{code}")
    env.setdefault("CUNGUAN_PUBLIC_URL", f"http://127.0.0.1:{web_port}")
    env.setdefault("CUNGUAN_TSA_URL", f"http://127.0.0.1:{tsa_port}/")  # every signature gets the TSA's time
    root = Path(env.get("CUNGUAN_KEYS_DIR") or instance_path_from_env() / "keys") / "ca" / "root.cert.pem"
    if root.is_file():  # the TSA certified by the platform CA (`make setup`: flask tsa certify)
        env.setdefault("CUNGUAN_TSA_CERT", str(root))
    say(
        f"存管平台 http://127.0.0.1:{web_port} · 银行模拟器 http://127.0.0.1:{sim_port} · "
        f"时间戳服务 http://127.0.0.1:{tsa_port} · Ctrl-C 全部停止"
    )
    return supervise(platform_commands(web_port, sim_port, tsa_port), env, say)
