#!/bin/sh
# expect_exit.sh COMMAND...: runs COMMAND and prints its exit status on a last line, so that a
# test's PASS_REGULAR_EXPRESSION (which makes CTest ignore the exit status) can check it.
"$@"
status=$?
echo "exit status $status"
