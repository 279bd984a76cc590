"""A private RabbitMQ for the session (tools/backends/rabbitmq-start.sh) and a kombu consumer of
the notifications a glancelite-api sends to it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import kombu
import pytest

from tests.backends.servers import unavailable
from tests.support.server import free_port

SCRIPTS = Path(__file__).resolve().parents[2] / "tools" / "backends"
EXCHANGE = "glance"  # Glance's control_exchange, which glancelite sets as oslo.messaging's default


class Broker:
    """The session's RabbitMQ: ``url`` for [DEFAULT] transport_url; ``stop()`` and ``start()`` by its scripts."""

    def __init__(self, directory: str):
        self.env = {
            **os.environ,
            "RABBITMQ_TEST_DIR": directory,
            "RABBITMQ_PORT": str(free_port()),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_EPMD_PORT": str(free_port()),
        }
        self.url = ""
        self.running = False

    def start(self) -> Broker:
        if self.running:
            return self
        out = subprocess.run(
            ["bash", str(SCRIPTS / "rabbitmq-start.sh")], env=self.env, capture_output=True, text=True, timeout=120
        )
        if out.returncode != 0:
            tail = " | ".join((out.stdout + out.stderr).strip().splitlines()[-3:])
            raise RuntimeError(f"tools/backends/rabbitmq-start.sh failed ({out.returncode}): {tail}")
        values = {}
        for line in out.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                values[key] = shlex.split(value)[0] if value else ""
        self.url = values["RABBITMQ_TRANSPORT_URL"]
        self.running = True
        return self

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPTS / "rabbitmq-stop.sh"), "keep"], env=self.env, timeout=60, check=False)
        self.running = False


@pytest.fixture(scope="session")
def broker():
    directory = tempfile.mkdtemp(prefix="glct-rmq-", dir="/tmp")
    started = Broker(directory)
    try:
        started.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        unavailable("rabbitmq", str(exc))
    yield started
    started.stop()
    shutil.rmtree(directory, ignore_errors=True)


class Listener:
    """A queue of our own bound to the notifications of every priority, decoded from oslo.messaging's
    messagingv2 envelope. Bound before the test acts, so it sees everything sent afterwards."""

    def __init__(self, url: str, topic: str = "notifications"):
        # oslo.messaging says rabbit://, kombu amqp://
        self.connection = kombu.Connection(url.replace("rabbit://", "amqp://", 1), connect_timeout=5)
        exchange = kombu.Exchange(EXCHANGE, type="topic", durable=False, auto_delete=False)
        bindings = [kombu.binding(exchange, routing_key=f"{topic}.{p}") for p in ("info", "error", "warn")]
        self.queue = kombu.Queue(f"glct-{uuid.uuid4().hex[:8]}", bindings=bindings, exclusive=True, auto_delete=True)
        self.messages: list[dict] = []
        self.consumer = kombu.Consumer(self.connection, queues=[self.queue], callbacks=[self._on_message])
        exchange(self.connection.default_channel).declare()
        self.consumer.consume()

    def _on_message(self, body, message) -> None:
        envelope = body if isinstance(body, dict) else json.loads(body)
        self.messages.append(json.loads(envelope["oslo.message"]))
        message.ack()

    def wait_for(self, done, timeout: float = 20.0) -> list[dict]:
        """Drain until ``done(messages)`` is true; the messages so far either way."""
        end = time.monotonic() + timeout
        while not done(self.messages) and time.monotonic() < end:
            try:
                self.connection.drain_events(timeout=0.2)
            except TimeoutError:
                pass
        return self.messages

    def quiet_for(self, seconds: float) -> list[dict]:
        """Everything that arrives within ``seconds`` (to show that something was not sent)."""
        return self.wait_for(lambda _: False, timeout=seconds)

    def close(self) -> None:
        self.queue(self.connection.default_channel).delete()  # nothing more is delivered while we close
        self.connection.release()


@pytest.fixture
def listener(broker):
    broker.start()  # a test before may have stopped it
    consumer = Listener(broker.url)
    yield consumer
    consumer.close()
