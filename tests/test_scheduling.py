"""The order in which ready runs take free slots (distilkit.experiments.scheduling)."""
from __future__ import annotations

from pathlib import Path

from distilkit.experiments.plan import Recipe, plan_jobs
from distilkit.experiments.scheduling import finished_stores, start_order, store_key


def _grid(tmp_path: Path):
    teachers, rows = plan_jobs([4, 5], Recipe("cpu"), seeds=[0], runs_dir=tmp_path,
                               extra_seeds={(4, "all"): [0, 1]})
    return teachers, {(j.spec.table, j.spec.row, j.seed): j for j in rows}


def _label(job) -> tuple:
    return job.spec.table, job.spec.row, job.seed


def test_teachers_start_first_the_one_most_rows_wait_for_first(tmp_path):
    teachers, rows = _grid(tmp_path)
    waiting = [*teachers, *rows.values()]
    ready = [rows[(4, "none", 0)], *reversed(teachers)]
    order = start_order(ready, running=[], waiting=waiting, seconds=lambda j: 1.0)
    assert [j.spec.row for j in order] == ["HRNet-W48 (teacher)", "stemnet (teacher)", "none"]


def test_longest_rows_first(tmp_path):
    _, rows = _grid(tmp_path)
    short, long = rows[(4, "none", 0)], rows[(5, "HRNet-W48-s3 / none", 0)]
    order = start_order([short, long], running=[], waiting=[], seconds=lambda j: 50.0 if j is long else 10.0)
    assert order == [long, short]


def test_a_row_behind_a_running_store_writer_waits_while_other_rows_are_ready(tmp_path):
    _, rows = _grid(tmp_path)
    writer, sharer, plain = rows[(4, "CS", 0)], rows[(4, "SH", 0)], rows[(4, "none", 0)]
    other_seed = rows[(4, "all", 1)]
    assert store_key(writer) == store_key(sharer) != store_key(other_seed)
    order = start_order([sharer, plain, other_seed], running=[writer], waiting=[], seconds=lambda j: 1.0)
    assert order[-1] is sharer
    # with nothing else ready it still starts: a slot is never left idle
    assert start_order([sharer], running=[writer], waiting=[], seconds=lambda j: 1.0) == [sharer]


def test_only_a_teacher_and_seed_with_two_rows_or_more_gets_a_store(tmp_path):
    _, rows = _grid(tmp_path)
    assert rows[(4, "CS", 0)].config.teacher_store == str(tmp_path / ".teacher_outputs")
    assert rows[(4, "all", 1)].config.teacher_store is None       # the only row at seed 1
    assert rows[(4, "none", 0)].config.teacher_store is None


def test_a_store_is_released_when_no_row_left_distils_from_its_teacher(tmp_path):
    _, rows = _grid(tmp_path)
    cs, sh, plain = rows[(4, "CS", 0)], rows[(4, "SH", 0)], rows[(4, "none", 0)]
    assert finished_stores(cs, running=[sh], waiting=[plain]) == []
    assert finished_stores(cs, running=[], waiting=[plain]) == [(cs.config.teacher_store, cs.config.teacher)]
    assert finished_stores(plain, running=[], waiting=[]) == []      # no teacher, no store


def test_the_simulated_pool_waits_for_teachers_and_counts_the_idle_tail(tmp_path):
    from distilkit.experiments.scheduling import simulate

    teachers, rows = plan_jobs([4], Recipe("cpu"), seeds=[0], runs_dir=tmp_path)
    hrnet = teachers[0]
    plain = next(j for j in rows if j.spec.teacher is None)
    distilled = [j for j in rows if j.spec.teacher is not None][:2]
    seconds = {hrnet.run_dir: 100.0, plain.run_dir: 30.0, distilled[0].run_dir: 50.0, distilled[1].run_dir: 40.0}
    pool = simulate([hrnet, plain, *distilled], in_flight=2, seconds=lambda j: seconds[j.run_dir])
    # slot 1: teacher 0-100, then 50 s; slot 2: plain 0-30, idle until the teacher ends, 40 s
    assert (pool.wall_s, pool.idle_slot_s, pool.tail_idle_slot_s) == (150.0, 80.0, 10.0)
    alone = simulate([plain], in_flight=2, seconds=lambda j: 30.0)
    assert (alone.wall_s, alone.idle_slot_s, alone.tail_idle_slot_s) == (30.0, 30.0, 30.0)
    # a row whose teacher is not planned here (trained before) is ready at once
    assert simulate(distilled, in_flight=2, seconds=lambda j: seconds[j.run_dir]).wall_s == 50.0
