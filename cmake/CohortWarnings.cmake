# Warnings are errors in our own code (targets call cohort_warnings()); third-party headers
# are included as SYSTEM through their imported targets, so their warnings do not fail us.
function(cohort_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Werror
    $<$<CXX_COMPILER_ID:Clang>:-Wno-unused-private-field>)  # clang (fuzz build): fields kept for layout
endfunction()
