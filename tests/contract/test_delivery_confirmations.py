"""What HQ confirms to a node, on each store backend: every batch its store holds after a
commit (the ones just written and the repeats it found there, even across a restart of
HQ), never one that was not committed, and as the ranges the node deletes by."""

import pytest

from hq.alerts import AlertConfig, CrossingDetector, DistressDetector, NodeHealthDetector
from hq.fusion import Fusion, FusionConfig
from hq.ingest import Ingest, Received
from hq.ingest.delivery import DeliveryAcks
from tests.store_backends import BACKENDS, backend_of
from tests.unit.test_hq_ingest_group import FRAME, ORIGIN, track_batch
from wire import delivery, topics
from wire.messages import encode

pytestmark = pytest.mark.unit


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with backend_of(request.param, tmp_path) as found:
        yield found


def confirming_ingest(store, published):
    alerts = AlertConfig(border=((23.52, 11.99), (22.79, 14.22), (23.00, 15.00)),
                         home=ORIGIN[:2])  # fmt: skip
    ingest = Ingest(store, Fusion(FusionConfig(origin=ORIGIN)), CrossingDetector(alerts, FRAME),
                    DistressDetector(alerts, FRAME), NodeHealthDetector(alerts))  # fmt: skip
    acks = DeliveryAcks(lambda topic, payload: published.append((topic, payload)))
    ingest.on_delivered = acks.committed
    return ingest, acks


def received(seq, node="post-1"):
    batch = track_batch(seq, node)  # received as it was sent: within HQ's bounds on time
    return Received(topics.tracks("tummo", node), encode(batch), batch.sent)


def last_confirmation(published, node="post-1"):
    mine = [p for t, p in published if t == topics.delivered("tummo", node)]
    return delivery.decode(mine[-1])


def test_stored_and_repeated_batches_are_confirmed_and_nothing_else(backend):
    published = []
    store = backend.open()
    ingest, acks = confirming_ingest(store, published)
    ingest.handle_many([received(s) for s in (0, 1, 2, 5, 2)] + [received(0, "post-2")])
    acks.flush()
    assert last_confirmation(published).ranges == [(0, 2), (5, 5)]
    assert last_confirmation(published, "post-2").ranges == [(0, 0)]
    assert len(published) == 2  # one message per node with news
    acks.flush()
    assert len(published) == 2  # no news, nothing sent
    store.close()

    # HQ restarts (nothing in memory): repeats of stored batches are confirmed again,
    # from the store's de-duplication record.
    published.clear()
    store = backend.open()
    ingest, acks = confirming_ingest(store, published)
    ingest.handle_many([received(1), received(2), received(3)])
    acks.flush()
    assert last_confirmation(published).ranges == [(1, 3)]
    store.close()


def test_a_batch_the_store_refuses_is_not_confirmed(backend):
    published = []
    store = backend.open()
    ingest, acks = confirming_ingest(store, published)
    commit = store.commit_ingest_many

    # A stand-in for a store fault on one batch (a full disk, a lost server), which cannot
    # be made to happen to one batch of a shared database server here.
    def refuse_seq_7(batches):
        if any(b.seq == 7 for b in batches):
            raise RuntimeError("the disk is full")
        return commit(batches)

    store.commit_ingest_many = refuse_seq_7
    outcomes = ingest.handle_many([received(6), received(7), received(8)])
    acks.flush()
    # The refused batch is kept as a dead letter (so the broker stops sending it to HQ), but
    # it is not confirmed: the node keeps it and sends it again.
    assert outcomes == ["stored", "dead_letter", "stored"]
    assert last_confirmation(published).ranges == [(6, 6), (8, 8)]
    store.commit_ingest_many = commit  # the fault has passed: the node's resend goes in
    assert ingest.handle_many([received(7)]) == ["stored"]
    acks.flush()
    assert last_confirmation(published).ranges == [(6, 8)]
    store.close()
