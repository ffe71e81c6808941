"""`helpdesk worker` runs the background work in its own process, as larger setups do."""
import os
import subprocess
import sys
from pathlib import Path

from app import db
from app.intake import Incoming, receive
from app.models import Message
from app.services import brands
from tests.helpers import wait_until
from workers import queue as worker_queue

HELPDESK = str(Path(sys.executable).parent / "helpdesk")


def test_separate_worker_process_sends_what_the_web_side_queued(settings, smtp_server):
    db.connect(settings)
    worker_queue.configure(settings)
    brand = brands.create_brand("acme", {"name": "Acme", "address": "support@acme.example",
                                         "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                                         "smtp_security": "none"})
    receive(Incoming(channel="form", brand=brand, sender_email="maria@example.org", sender_name="Maria",
                     subject="Parcel", text="Where is it?", acknowledge=True), settings.secret_key)
    confirmation = Message.get(Message.is_auto == True)  # noqa: E712
    assert confirmation.state == "queued"  # no worker runs in this process

    env = {**os.environ, "HELPDESK_DATA_DIR": str(settings.data_dir),
           "HELPDESK_SECRET_KEY": settings.secret_key}
    worker = subprocess.Popen([HELPDESK, "worker", "--workers", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mail = smtp_server.wait_for(1, timeout=20)[0]
        assert "[#" in mail["Subject"] and mail["To"].addresses[0].addr_spec == "maria@example.org"
        wait_until(lambda: Message.get_by_id(confirmation.id).state == "sent", 10)
    finally:
        worker.terminate()
        worker.wait(15)
