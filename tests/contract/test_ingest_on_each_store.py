"""HQ ingest over each store backend: a batch the database refuses is dead-lettered alone
and the rest of its group commits; a database that refuses everything leaves the group
failed (unacknowledged), and a retry stores it once it takes writes again."""

import pytest

from hq.alerts import AlertConfig, CrossingDetector, DistressDetector, NodeHealthDetector
from hq.fusion import Fusion, FusionConfig
from hq.ingest import Ingest
from tests.store_backends import BACKENDS, backend_of
from tests.unit.test_hq_ingest_group import FRAME, ORIGIN, received, track_batch
from wire.messages import encode

pytestmark = pytest.mark.unit

# A real refusal by each database, as a poisoned row would meet: for `condition` only.
REFUSE = {
    "sqlite": ("CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN {condition} "
               "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
    "postgresql": ("CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN IF {condition} THEN RAISE EXCEPTION 'refused'; END IF; "
                   "RETURN NEW; END $$; "
                   "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW "
                   "EXECUTE FUNCTION refuse_{table}()"),
}  # fmt: skip
ALLOW = {"sqlite": "DROP TRIGGER refuse_{table}",
         "postgresql": "DROP TRIGGER refuse_{table} ON {table}"}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with backend_of(request.param, tmp_path) as found:
        yield found


def ingest_on(store) -> Ingest:
    alerts = AlertConfig(border=((23.52, 11.99), (22.79, 14.22), (23.00, 15.00)),
                         home=ORIGIN[:2])  # fmt: skip
    return Ingest(store, Fusion(FusionConfig(origin=ORIGIN)), CrossingDetector(alerts, FRAME),
                  DistressDetector(alerts, FRAME), NodeHealthDetector(alerts))  # fmt: skip


def test_a_refused_batch_is_dead_lettered_alone_and_the_group_commits(backend):
    store = backend.open()
    backend.execute(REFUSE[backend.name].format(table="seen_batches", condition="NEW.seq = 5"))
    ingest = ingest_on(store)
    outcomes = ingest.handle_many([received(track_batch(seq)) for seq in range(12)])
    assert outcomes == ["stored"] * 5 + ["dead_letter"] + ["stored"] * 6
    assert sorted(s for (s,) in backend.execute("SELECT seq FROM seen_batches")) == [
        s for s in range(12) if s != 5]  # fmt: skip
    [letter] = store.dead_letters()
    assert letter.reason.startswith("not stored") and "refused" in letter.reason
    assert letter.payload == encode(track_batch(5))
    store.close()


def test_a_store_refusing_everything_fails_the_group_and_a_retry_stores_it(backend):
    store = backend.open()
    for table in ("seen_batches", "dead_letters"):
        backend.execute(REFUSE[backend.name].format(table=table, condition="true"))
    ingest = ingest_on(store)
    batches = [received(track_batch(seq)) for seq in range(4)]
    assert ingest.handle_many(batches) == ["failed"] * 4
    for table in ("seen_batches", "dead_letters"):
        backend.execute(ALLOW[backend.name].format(table=table))
    assert ingest.handle_many(batches) == ["stored"] * 4
    assert backend.count("seen_batches") == 4 and backend.count("dead_letters") == 0
    store.close()
