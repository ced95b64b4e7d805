"""The what-if page: its engine without a browser, its command, and the page in Chromium.

The browser test starts `gtmsim app` on 127.0.0.1 on a free port, opens the page in
Debian's chromium through Playwright, changes the team, waits for the refined answer and
reads it, and stops the server and every process it started.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from gtmsim import load_scenario
from gtmsim.alignment import LEVER_NAMES
from gtmsim.app import whatif as w
from gtmsim.cli import main
from gtmsim.scenario import check_files, shipped_scenarios

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SMALL = {"market.prospects": 2000, "months": 6, "run.reps": 4}


@pytest.fixture(scope="module")
def siloed():
    return load_scenario("siloed")


@pytest.fixture(scope="module")
def runner():
    with cf.ThreadPoolExecutor(max_workers=1) as pool:  # in-process: quick to start
        yield w.Runner(executor=pool)


# --------------------------------------------------------------------------- controls and plans


def test_controls_cover_every_program_the_team_a_hire_and_every_lever(siloed):
    controls = {c.key: c for c in w.controls_for(siloed)}
    for name in siloed.marketing.programs:
        c = controls[f"marketing.programs.{name}.monthly_budget"]
        assert (c.group, c.unit) == (w.MARKETING_GROUP, "$/month")
    for lever in LEVER_NAMES:
        assert controls[f"alignment.{lever}"].group == w.ALIGNMENT_GROUP
    assert controls["alignment.routing"].choices == w.ROUTINGS
    assert controls["sales.reps"].unit == "reps"
    assert controls["hire.month"].unit == "month"
    # Every number-valued control says its unit.
    assert all(c.unit for c in controls.values()
               if c.kind != "choice" and c.key != "run.seed")


def test_the_app_runs_a_small_market_by_default(siloed):
    values = w.initial_values(siloed)
    assert values["market.prospects"] == w.APP_PROSPECTS < siloed.market.prospects
    assert values["months"] == w.APP_MONTHS
    plan = w.build_plan(siloed, {})
    assert plan.ok and plan.reference.market.prospects == w.APP_PROSPECTS
    assert w.changes(plan.reference, plan.plan) == []


def test_bad_values_are_placed_next_to_their_controls_all_at_once(siloed):
    plan = w.build_plan(siloed, {**SMALL, "sales.reps": "-3", "alignment.sla_days": "soon",
                                 "alignment.coordination": "2", "hire.extra": "2",
                                 "hire.month": "9", "marketing.programs.content.monthly_budget":
                                 "1.5.0"})
    assert plan.plan is None and not plan.ok
    assert plan.errors == {
        "sales.reps": "must be ≥ 0, got -3",
        "alignment.sla_days": "expected a number (days), got 'soon'",
        "alignment.coordination": "must be ≤ 0.9, got 2.0",
        "hire.month": "must be from 1 to 6 (the months simulated), got 9",
        "marketing.programs.content.monthly_budget": "expected a number ($/month), got '1.5.0'",
    }
    assert w.build_plan(siloed, {"market.prospects": "0"}).errors == {
        "market.prospects": "must be ≥ 1, got 0"}
    # The hiring month matters only when reps are hired.
    assert w.build_plan(siloed, {"months": "3", "hire.month": "6"}).ok
    assert w.build_plan(siloed, {"sales.reps": "4.5"}).errors == {
        "sales.reps": "expected a whole number (reps), got '4.5'"}


def test_a_hire_is_a_timeline_entry_and_a_preset_sets_every_lever(siloed):
    plan = w.build_plan(siloed, {**SMALL, "hire.extra": "2", "hire.month": "3",
                                 **w.preset_values("aligned"), "alignment.preset": "aligned",
                                 "marketing.programs.paid_ads.monthly_budget": "$30,000"})
    assert plan.ok, plan.errors
    entry = plan.plan.timeline[-1]
    assert (entry.month, entry.set) == (3, {"sales.reps": 6})
    assert plan.plan.levers == load_scenario("aligned").levers
    assert plan.plan.marketing.programs["paid_ads"].monthly_budget == 30_000
    said = w.changes(plan.reference, plan.plan)
    assert "preset aligned (was siloed)" in said and "2 reps hired in month 3" in said
    assert "Paid ads 30000 $/month (was 20000)" in said
    one = w.build_plan(siloed, {**SMALL, "alignment.sla_days": "1"})
    assert w.changes(one.reference, one.plan) == ["Follow-up SLA 1 day (was 0)"]


def test_saved_plan_passes_check_and_keeps_the_scenario_size(siloed, tmp_path):
    plan = w.build_plan(siloed, {**SMALL, "sales.reps": "6", "alignment.sla_days": "1",
                                 "hire.extra": "1", "hire.month": "4"})
    path = w.save_plan(plan.plan, siloed, tmp_path / "hire and sla.toml", "hire and sla")
    assert check_files([path]) == {str(path): []}
    assert main(["check", str(path)]) == 0
    saved = load_scenario(path)
    assert saved.name == "hire and sla" and saved.question.startswith("What if")
    assert (saved.market.prospects, saved.months) == (siloed.market.prospects, siloed.months)
    assert saved.sales.reps == 6 and saved.levers.sla_days == 1
    assert saved.timeline[-1].month == 4 and saved.timeline[-1].set == {"sales.reps": 7}
    # Everything but the name, question and size is the plan.
    strip = ("name", "question", "months", "market")
    assert ({k: v for k, v in saved.to_dict().items() if k not in strip}
            == {k: v for k, v in plan.plan.to_dict().items() if k not in strip})


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_a_plan_from_every_shipped_scenario_saves_as_a_valid_file(name, tmp_path):
    reference = load_scenario(name)
    plan = w.build_plan(reference, {**SMALL, "hire.extra": "1", "hire.month": "2",
                                    "alignment.routing": "oldest_first"})
    if reference.founder is not None:  # the founder is the whole team: a hire is refused clearly
        assert "makes the founder the whole sales team" in plan.errors["hire.extra"]
        plan = w.build_plan(reference, {**SMALL, "alignment.routing": "oldest_first"})
    assert plan.ok, (plan.errors, plan.general)
    path = w.save_plan(plan.plan, reference, tmp_path / "plan.toml", f"{name} plan")
    assert check_files([path]) == {str(path): []}
    saved = load_scenario(path)
    assert saved.timeline == plan.plan.timeline and saved.levers == plan.plan.levers


def test_save_refuses_a_bad_name_or_path_and_writes_nothing(siloed, tmp_path):
    plan = w.build_plan(siloed, SMALL)
    with pytest.raises(w.ScenarioError, match="name: may hold only"):
        w.save_plan(plan.plan, siloed, tmp_path / "x.toml", "../x")
    with pytest.raises(w.ScenarioError, match="ending in .toml"):
        w.save_plan(plan.plan, siloed, tmp_path / "x.txt", "x")
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(w.ScenarioError, match="file: "):
        w.save_plan(plan.plan, siloed, tmp_path / "folder.toml", "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.toml"]


# --------------------------------------------------------------------------- refinement


def test_refinement_pairs_replications_on_common_random_numbers(siloed, runner):
    same = w.build_plan(siloed, SMALL)
    snaps = list(runner.refine(same.reference, same.plan, reps=4, seed=7))
    assert [s.done for s in snaps] == [3, 4] and snaps[-1].finished
    fig = w.figures(snaps[-1])
    table = fig.table.set_index("outcome")
    # The same plan on the same seeds: not one dollar apart in any replication.
    assert table.loc["cumulative_bookings", "diff"] == 0
    assert table.loc["cumulative_bookings", "diff_low"] == 0 == fig.difference["high"].abs().max()

    more = w.build_plan(siloed, {**SMALL, "sales.reps": "8"})
    snap = list(runner.refine(more.reference, more.plan, reps=4, seed=7))[-1]
    table = w.figures(snap).table.set_index("outcome")
    # Four more reps for six months at $15,000 each: the cost difference is exact.
    assert table.loc["total_cost", "diff"] == pytest.approx(4 * 15_000 * 6)
    assert table.loc["cumulative_bookings", "diff"] != 0
    assert "CI" in w.headline(w.figures(snap), "siloed")
    fates = w.figures(snap).fates
    assert list(fates.columns) == list(w.LEAD_FATES) and list(fates.index) == ["siloed", "what-if"]


def test_a_cancelled_refinement_stops_and_drops_the_runs_not_started(siloed):
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        runner = w.Runner(executor=pool)
        plan = w.build_plan(siloed, {**SMALL, "sales.reps": "5", "run.reps": "8"})
        job = runner.refine(plan.reference, plan.plan, reps=8, seed=3)
        first = next(iter(job))
        job.cancel()
        assert first.done == w.FIRST_REPS
        assert list(job) == []
        assert sum(f.cancelled() for f in job.pending) >= 8  # most of the 16 never ran


# --------------------------------------------------------------------------- command


def test_help_does_not_import_solara():
    code = ("import sys; from gtmsim.cli import main; main(['--help']); main(['app', '--help']);"
            "assert 'solara' not in sys.modules and 'gtmsim.app.page' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--port" in done.stdout and "what-if page" in done.stdout


def test_app_refuses_a_bad_scenario_and_a_taken_port(capsys):
    assert main(["app", "no_such_scenario"]) == 2
    assert "no_such_scenario" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "siloed", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err and "Traceback" not in err
    # Every mistake at once.
    assert main(["app", "siloed", "--set", "sales.reps=-1", "--host", "no.such.host.invalid",
                 "--save-dir", "/no/such/folder"]) == 2
    err = capsys.readouterr().err
    assert "sales.reps: must be ≥ 0, got -1" in err and "--host no.such.host.invalid" in err
    assert "--save-dir /no/such/folder: not a folder" in err


# --------------------------------------------------------------------------- the page in a browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


@pytest.fixture
def app_server(tmp_path):
    port = _free_port()
    cmd = [sys.executable, "-m", "gtmsim.cli", "app", "siloed", "--port", str(port),
           "--reps", "4", "--set", "market.prospects=2000", "--set", "months=6",
           "--save-dir", str(tmp_path)]
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own group: stopped whole below
    try:
        deadline = time.monotonic() + 45
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the server did not start within 45 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/", tmp_path
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _group(proc.pid)
        for p in left:
            p.kill()
        log.close()
        assert not left, f"processes left behind: {left}"


@pytest.mark.slow
def test_the_page_answers_a_change_in_a_real_browser(app_server):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make install-test` installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    url, folder = app_server
    # An empty profile: Playwright passes it as --user-data-dir (it refuses that flag in args).
    profile = tempfile.mkdtemp(prefix="gtmsim-chromium-")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                viewport={"width": 1400, "height": 1500})
            try:
                page = browser.new_page()
                page.goto(url)
                done = page.locator(".gtmsim-done")
                expect(done).to_have_count(1, timeout=40_000)
                bookings = page.locator(".gtmsim-diff-cumulative_bookings")
                cost = page.locator(".gtmsim-diff-total_cost")
                assert (bookings.text_content(), cost.text_content()) == ("0", "0")

                reps = page.get_by_label("Reps at the start")
                reps.fill("8")
                reps.press("Enter")
                # Refined to the end for the new plan: four more reps for six months.
                expect(cost).to_have_text(str(4 * 15_000 * 6), timeout=40_000)
                expect(done).to_have_count(1, timeout=40_000)
                assert float(bookings.text_content()) != 0
                expect(page.locator(".gtmsim-headline")).to_contain_text("95% CI")
                if os.environ.get("GTMSIM_APP_SCREENSHOT"):
                    page.screenshot(path=os.environ["GTMSIM_APP_SCREENSHOT"])

                page.get_by_role("button", name="Save as scenario").click()
                expect(page.locator(".gtmsim-saved")).to_contain_text("Saved", timeout=10_000)

                month = page.get_by_label("Hiring month")
                month.fill("soon")
                month.press("Enter")
                expect(page.get_by_text("expected a whole number (month), got 'soon'")
                       ).to_be_visible()
                expect(page.get_by_text("Fix the values marked in red")).to_be_visible()
                assert "Traceback" not in page.locator("body").inner_text()

                # Mesa's SolaraViz on one run of the plan: a step is a day, STEP runs a month.
                page.goto(url + "model")
                page.get_by_role("button", name="Step").click(timeout=30_000)
                expect(page.get_by_text("Time: 30.0")).to_be_visible(timeout=30_000)
                expect(page.get_by_text("One run of the plan (2,000 prospects, 6 months)")
                       ).to_be_visible()
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    saved = folder / "siloed_what_if.toml"
    assert check_files([saved]) == {str(saved): []}
    assert load_scenario(saved).sales.reps == 8
