# serve: the scheduler with a fake clock (invariants, preemption, Poisson arrivals, bad
# configurations, latency statistics of a hand-made trace) (tests/test_serve_sched.c)
hb_test(test_serve_sched SOURCES test_serve_sched.c LABELS "unit")
# serve on the CPU backend: attention_paged vs attention (bits; f32, bf16, f16, fp8 caches) and
# a double reference; first logits of a stream vs prefill's, with whole and chunked prefill and
# an fp8 cache; preemption and concurrency leave the greedy tokens unchanged, concurrency 1
# gives decode's greedy tokens; all of it for tiny and tiny-moe (expert counts); the automatic
# KV cache sized from a fake mem_info (tests/test_serve.c). `test_serve SRC --device cuda` is
# the GPU comparison test_gpu_emu runs on the emulated module.
hb_test(test_serve SOURCES test_serve.c LABELS "unit;ref" ARGS ${CMAKE_SOURCE_DIR})
# serve from the command line: bad input exits 2 naming the flag; Poisson SLO verdicts and the
# request records checked with h5py (tests/test_serve_cli.sh)
add_test(NAME test_serve_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_serve_cli.sh $<TARGET_FILE:hetbench>
         "${HB_H5PY_PYTHON}")
set_tests_properties(test_serve_cli PROPERTIES LABELS "unit" TIMEOUT 120)
