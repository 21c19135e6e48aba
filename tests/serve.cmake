# serve: the scheduler with a fake clock (invariants, preemption, Poisson arrivals, bad
# configurations, latency statistics of a hand-made trace) (tests/test_serve_sched.c)
hb_test(test_serve_sched SOURCES test_serve_sched.c LABELS "unit")
