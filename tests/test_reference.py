"""gtmsim and the plain Mesa reference model (benchmarks/) agree on the aggregate funnel."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from gtmsim import GTMModel

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "mesa_reference.py"
_spec = importlib.util.spec_from_file_location("mesa_reference", _PATH)
ref = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("mesa_reference", ref)  # its dataclass looks itself up there
_spec.loader.exec_module(ref)

N, MONTHS = 2000, 9


def test_the_gtmsim_side_reaches_p_times_the_market_each_month():
    model = GTMModel(ref.gtmsim_scenario(N, MONTHS), seed=0)
    model.step()
    (program,) = model.programs.values()
    assert program.reach_per_day * 30 == pytest.approx(ref.P_MONTHLY * N, rel=1e-9)
    assert not model.rep_by_id


@pytest.mark.slow
def test_mesa_reference_and_gtmsim_agree_on_monthly_awareness_and_the_check_has_power():
    mesa_runs = np.array([ref.run_mesa(N, MONTHS, seed) for seed in range(8)])
    gtm_runs = np.array([ref.run_gtmsim(N, MONTHS, 100 + seed) for seed in range(12)])
    ag = ref.agreement(mesa_runs, gtm_runs)
    assert ag.passed, f"t by month {np.round(ag.t_month, 2)}, overall {ag.t_overall:.2f}"
    # Both are the Bass model in discrete days: within a few points of the closed form.
    np.testing.assert_allclose(ag.mean_b, ref.bass_share(MONTHS), atol=0.03)
    # The check can fail: word of mouth 50% stronger is told apart.
    louder = np.array([ref.run_gtmsim(N, MONTHS, 200 + seed, ref.P_MONTHLY, ref.Q_MONTHLY * 1.5)
                       for seed in range(12)])
    assert not ref.agreement(mesa_runs, louder).passed
