"""Counts of bytes past 2 GiB are recorded and read back whole, on SQLite and on PostgreSQL
(whose INTEGER stops at 2**31 - 1: migration 0019 made these columns BIGINT): the size of a
backup of a disk of several GiB, an image's virtual size, an hour's and a counter's traffic."""

from __future__ import annotations

from sqlmodel import Session, select

from orchestrator.core.db import make_engine
from orchestrator.core.models import Backup, Customer, Image, TrafficCounter, TrafficSample, Vps
from orchestrator.core.settings import Settings

BIG = 5 * (1 << 30) + 7  # 5 GiB and a few bytes
HUGE = 1 << 50


def test_byte_counts_past_2_gib_are_kept(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            customer = Customer(name="acme", email="it@acme.example")
            session.add(customer)
            session.add(Image(name="big", os="Big Linux", sha256="0" * 64, path="/nonexistent", size_bytes=BIG,
                              virtual_size_bytes=HUGE))
            session.flush()
            vps = Vps(name="web", customer_id=customer.id or 0, image="big", vcpus=1, memory_mib=256, disk_gib=8)
            session.add(vps)
            session.flush()
            session.add(Backup(id="b1", vps_id=vps.id, kind="manual", pool="p", volume="v", size_bytes=BIG))
            session.add(TrafficCounter(vps_id=vps.id, rx_bytes=HUGE, tx_bytes=BIG))
            session.add(TrafficSample(vps_id=vps.id, hour=vps.created_at, rx_bytes=BIG, tx_bytes=HUGE))
            session.commit()
            vps_id = vps.id
        with Session(engine) as session:
            image, backup = session.get(Image, "big"), session.get(Backup, "b1")
            counter = session.get(TrafficCounter, vps_id)
            assert image is not None and (image.size_bytes, image.virtual_size_bytes) == (BIG, HUGE)
            assert backup is not None and backup.size_bytes == BIG
            assert counter is not None and (counter.rx_bytes, counter.tx_bytes) == (HUGE, BIG)
            [sample] = session.exec(select(TrafficSample)).all()
            assert (sample.rx_bytes, sample.tx_bytes) == (BIG, HUGE)
    finally:
        engine.dispose()
