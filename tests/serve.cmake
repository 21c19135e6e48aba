# serve: the scheduler with a fake clock (invariants, preemption, Poisson arrivals, bad
# configurations, latency statistics of a hand-made trace) (tests/test_serve_sched.c)
hb_test(test_serve_sched SOURCES test_serve_sched.c LABELS "unit")
# serve on the CPU backend: attention_paged vs attention (bits) and a double reference; first
# logits of a stream vs prefill's, with whole and chunked prefill; preemption and concurrency
# leave the greedy tokens unchanged (tests/test_serve.c)
hb_test(test_serve SOURCES test_serve.c LABELS "unit;ref")
