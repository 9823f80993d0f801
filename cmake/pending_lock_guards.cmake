# Read by the clang preset (CMAKE_PROJECT_INCLUDE). src/registry/registry.cc and
# src/meters/meters.cc still take the heap lock through std::scoped_lock, which carries no
# thread-safety attributes, so -Wthread-safety cannot see that they hold it when they call the
# Segment methods that require it. Until they take it through shm::MutexLock, the analysis (only
# the analysis: every other warning stays an error) is off for those two files. Delete this file
# and its line in CMakePresets.json once they do.
include_guard(GLOBAL)
set(_shmetrics_pending_lock_guard_sources
    ${CMAKE_CURRENT_LIST_DIR}/../src/registry/registry.cc
    ${CMAKE_CURRENT_LIST_DIR}/../src/meters/meters.cc)
function(_shmetrics_pending_lock_guards)
  if(TARGET shmetrics)
    set_source_files_properties(${_shmetrics_pending_lock_guard_sources} TARGET_DIRECTORY shmetrics
                                PROPERTIES COMPILE_OPTIONS -Wno-thread-safety-analysis)
  endif()
endfunction()
cmake_language(DEFER CALL _shmetrics_pending_lock_guards)
