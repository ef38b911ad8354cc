# Finds every external dependency once. Torch comes from the project venv's PyTorch wheel
# (torch.utils.cmake_prefix_path) unless Torch_DIR / CMAKE_PREFIX_PATH point at a standalone libtorch.
find_package(PkgConfig REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(Threads REQUIRED)

if(THINKSTEER_ENGINE)
  find_package(MPI REQUIRED COMPONENTS C CXX)
  # The llm annotator's OpenAI-compatible endpoint client (src/annotate/llm_http.cpp; apt: libcurl4-openssl-dev).
  find_package(CURL REQUIRED)
  set(HDF5_PREFER_PARALLEL TRUE)
  find_package(HDF5 REQUIRED COMPONENTS C HL)
  if(NOT (HDF5_IS_PARALLEL OR HDF5_PROVIDES_PARALLEL))
    message(FATAL_ERROR "HDF5 at ${HDF5_INCLUDE_DIRS} is serial; thinksteer needs parallel HDF5 (apt: libhdf5-openmpi-dev).")
  endif()

  if(NOT Torch_DIR)
    set(_venv_python "${PROJECT_SOURCE_DIR}/.venv/bin/python")
    if(NOT EXISTS "${_venv_python}")
      set(_venv_python python3)
    endif()
    execute_process(COMMAND ${_venv_python} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
    if(_rc EQUAL 0)
      list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
    endif()
  endif()
  # The CUDA wheel's TorchConfig looks for the CUDA toolkit; it is optional here.
  find_package(CUDAToolkit QUIET)
  # We compile no CUDA ourselves; naming the arch skips Caffe2's GPU-detection try_run (which fails
  # without a GPU and with CMAKE_CXX_STANDARD 20). Hopper (H100/H200) by default.
  if(NOT TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "9.0")
  endif()
  find_package(Torch REQUIRED)
  add_library(thinksteer_torch INTERFACE)
  target_link_libraries(thinksteer_torch INTERFACE ${TORCH_LIBRARIES})
  # libtorch ships its own (newer) fmt headers in its include dir; Debian's spdlog is built against
  # the system fmt. A shim dir holding only a link to the system fmt goes first so both agree.
  get_target_property(_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _fmt_inc)
    set(_fmt_inc /usr/include)
  endif()
  list(GET _fmt_inc 0 _fmt_inc)
  set(_shim ${PROJECT_BINARY_DIR}/fmt_shim)
  file(MAKE_DIRECTORY ${_shim})
  file(CREATE_LINK ${_fmt_inc}/fmt ${_shim}/fmt SYMBOLIC)
  target_include_directories(thinksteer_torch SYSTEM INTERFACE ${_shim} ${TORCH_INCLUDE_DIRS})
  # TORCH_CXX_FLAGS carries -D_GLIBCXX_USE_CXX11_ABI=...; keep it in sync with Debian's libraries.
  separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(thinksteer_torch INTERFACE ${_torch_flags})
  # at::parallel_for is inline OpenMP when libtorch is built with it (ATen/ParallelOpenMP.h: a `#pragma omp
  # parallel` in a header), so code of ours that calls it runs on ONE thread unless compiled with -fopenmp.
  # thinksteer_omp gives those files the flag and links the OpenMP runtime libtorch itself loads (its
  # lib/libgomp*.so*; the system's only when it ships none): one runtime, one thread pool in the process.
  add_library(thinksteer_omp INTERFACE)
  file(GLOB _torch_gomp "${TORCH_INSTALL_PREFIX}/lib/libgomp*.so*")
  if(_torch_gomp)
    list(GET _torch_gomp 0 _torch_gomp)
    target_link_libraries(thinksteer_omp INTERFACE ${_torch_gomp})
  else()
    find_package(OpenMP REQUIRED)
    target_link_libraries(thinksteer_omp INTERFACE OpenMP::OpenMP_CXX)
  endif()
  set(THINKSTEER_OMP_FLAG -fopenmp)

  # NCCL and CUDA are optional at build time: without them, pipeline stages on CUDA are refused at run time.
  set(THINKSTEER_HAVE_CUDA ${CUDAToolkit_FOUND})
  find_library(NCCL_LIBRARY NAMES nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
  find_path(NCCL_INCLUDE_DIR NAMES nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
  if(NCCL_LIBRARY AND NCCL_INCLUDE_DIR AND TARGET CUDA::cudart)
    set(THINKSTEER_HAVE_NCCL TRUE)
  else()
    set(THINKSTEER_HAVE_NCCL FALSE)
  endif()
endif()
