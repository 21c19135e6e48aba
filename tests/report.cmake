# results/ report, prices, claims, compare (tests/test_report.c) and the HTML report it writes:
# parsed by Python's html.parser (test_report_html) and, where Debian's chromium is installed,
# rendered headless to a PNG without console errors (test_report_render; skips with 77 otherwise).
set(HB_REPORT_HTML ${CMAKE_CURRENT_BINARY_DIR}/test_report.html)
hb_test(test_report SOURCES test_report.c LABELS unit ARGS ${HB_REPORT_HTML})
target_compile_definitions(test_report PRIVATE HB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
set_tests_properties(test_report PROPERTIES FIXTURES_SETUP report_html)

# html.parser is in every Python 3; prefer the distribution's interpreter (the first python3 on
# PATH may be a pyenv one).
find_program(HB_REPORT_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HB_REPORT_PYTHON)
  find_program(HB_REPORT_PYTHON python3)
endif()
if(HB_REPORT_PYTHON)
  add_test(NAME test_report_html
    COMMAND ${HB_REPORT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_report_html.py ${HB_REPORT_HTML})
  set_tests_properties(test_report_html PROPERTIES LABELS unit FIXTURES_REQUIRED report_html
    SKIP_RETURN_CODE 77)
else()
  message(STATUS "test_report_html: no python3 found, test not added")
endif()
add_test(NAME test_report_render
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_report_render.sh ${HB_REPORT_HTML}
          ${CMAKE_CURRENT_BINARY_DIR}/test_report_render)
set_tests_properties(test_report_render PROPERTIES LABELS unit FIXTURES_REQUIRED report_html
  SKIP_RETURN_CODE 77 TIMEOUT 120)

# The same HTML laid out by chromium: no SVG label clipped or overlapping another, every table
# within a 1280 px viewport (boxes measured in the page); the self-test plants each problem once
# and must find all three (skips with 77 without chromium).
if(HB_REPORT_PYTHON)
  add_test(NAME test_report_layout
    COMMAND ${HB_REPORT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_report_layout.py ${HB_REPORT_HTML}
            ${CMAKE_CURRENT_BINARY_DIR}/test_report_layout)
  set_tests_properties(test_report_layout PROPERTIES LABELS unit FIXTURES_REQUIRED report_html
    SKIP_RETURN_CODE 77 TIMEOUT 120)
  add_test(NAME test_report_layout_selftest
    COMMAND ${HB_REPORT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_report_layout.py --self-test
            ${CMAKE_CURRENT_BINARY_DIR}/test_report_layout_selftest)
  set_tests_properties(test_report_layout_selftest PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
