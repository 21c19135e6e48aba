hb_test(test_transformer SOURCES test_transformer.c LABELS "unit;ref")
hb_test(test_models SOURCES test_models.c LABELS unit)
