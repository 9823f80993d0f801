# Installs the build tree into a scratch prefix, then builds and runs tests/consumer against it.
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${BIN}/consumer-prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/consumer -B ${BIN}/consumer-build -G Ninja
                        -DCMAKE_PREFIX_PATH=${BIN}/consumer-prefix RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BIN}/consumer-build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND ${BIN}/consumer-build/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer failed: ${rc}")
endif()
