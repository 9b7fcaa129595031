#!/usr/bin/env bash
# Coverage-guided fuzzing of blend's parsers with libFuzzer (see FUZZING.md).
#
#   scripts/fuzz.sh                     # build every target, fuzz each for 60 s
#   scripts/fuzz.sh -t 600 unpickler    # fuzz one target for 10 minutes
#   scripts/fuzz.sh --check             # run every target once over its seeds and
#                                       # regressions (no fuzzing): a quick regression test
#   scripts/fuzz.sh --timeout 5 -t 600  # a hang is over 5 s per input (a loaded machine)
#   scripts/fuzz.sh --list
#
# The modules a target needs (BlendConcurrency, BlendTensor, BlendCheckpoint, BlendMessages, BlendImage, BlendModels) are
# compiled straight from Sources/ with swiftc -sanitize=fuzzer,address into .build-fuzz/
# (SwiftPM is not used: it would also build swift-crypto, which only the downloader needs and
# which takes minutes). Each target is Fuzz/Targets/<name>.swift. Corpora start from the
# committed fixtures and Fuzz/Regressions/<name>/ (minimised inputs of fixed findings) and
# grow in .build-fuzz/corpus/<name>/; crashes, hangs and over-large allocations are written
# to .build-fuzz/artifacts/<name>/. The bounds: -timeout=1 (a hang is > 1 s per input),
# -malloc_limit_mb=1024 (an allocation beyond 1 GiB is a finding), -rss_limit_mb=2048.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=60
timeout=1
check=false
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -t|--time) seconds="$2"; shift 2 ;;
        # On a loaded machine a niced fuzzer can wait over a second for a core: a longer
        # timeout there, and the flagged inputs re-run alone (FUZZING.md).
        --timeout) timeout="$2"; shift 2 ;;
        --check) check=true; shift ;;
        --list) ls Fuzz/Targets | sed 's/\.swift$//'; exit 0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(ls Fuzz/Targets | sed 's/\.swift$//')
fi

build=.build-fuzz
mkdir -p "$build/modules" "$build/obj" "$build/bin"
cflags=$(pkg-config --cflags openblas libpng libturbojpeg zlib)
# oneDNN (BlendTensor's CDNNL) has no pkg-config file: its headers are in the default path.
libs="$(pkg-config --libs openblas libpng libturbojpeg zlib) -ldnnl"
xcc=()
for flag in $cflags; do xcc+=(-Xcc "$flag"); done
common=(-O -g -parse-as-library -enable-testing -sanitize=fuzzer,address
        -I "$build/modules" -I Sources/COpenBLAS -I Sources/CDNNL -I Sources/CZlib -I Sources/CPNG -I Sources/CJPEG
        -I "$build/cmodules/CBlendKernels" -I "$build/cmodules/CPNG16" "${xcc[@]}")

# BlendTensor's C kernels (CBlendKernels): compiled with clang as SwiftPM does (-O2 there in
# release), instrumented like the Swift code, with a module map like the one SwiftPM generates.
mkdir -p "$build/cmodules/CBlendKernels"
kernels_object="$build/obj/CBlendKernels.o"
if [[ ! -f "$kernels_object" ]] || [[ -n $(find Sources/CBlendKernels -newer "$kernels_object" | head -1) ]]; then
    echo "==> compiling CBlendKernels" >&2
    clang -O2 -g -fsanitize=fuzzer-no-link,address -I Sources/CBlendKernels/include -c Sources/CBlendKernels/kernels.c -o "$kernels_object"
fi
printf 'module CBlendKernels {\n    header "%s"\n    export *\n}\n' "$PWD/Sources/CBlendKernels/include/CBlendKernels.h" \
    > "$build/cmodules/CBlendKernels/module.modulemap"

# BlendImage's 16-bit PNG reader and writer (CPNG16, libpng's classic API in C): the same way.
mkdir -p "$build/cmodules/CPNG16"
png16_object="$build/obj/CPNG16.o"
if [[ ! -f "$png16_object" ]] || [[ -n $(find Sources/CPNG16 -newer "$png16_object" | head -1) ]]; then
    echo "==> compiling CPNG16" >&2
    clang -O2 -g -fsanitize=fuzzer-no-link,address $(pkg-config --cflags libpng) -I Sources/CPNG16/include \
        -c Sources/CPNG16/png16.c -o "$png16_object"
fi
printf 'module CPNG16 {\n    header "%s"\n    export *\n}\n' "$PWD/Sources/CPNG16/include/png16.h" \
    > "$build/cmodules/CPNG16/module.modulemap"

# Rebuilds module $1 from the sources that follow when any of them is newer than its object.
module() {
    local name="$1"; shift
    local object="$build/obj/$name.o"
    if [[ -f "$object" ]] && [[ -z $(find "$@" -newer "$object" 2>/dev/null | head -1) ]]; then return; fi
    echo "==> compiling $name ($# files)" >&2
    swiftc -wmo -c -module-name "$name" -emit-module -emit-module-path "$build/modules/$name.swiftmodule" \
        -o "$object" "${common[@]}" "$@"
}

module BlendConcurrency Sources/BlendConcurrency/*.swift
module BlendTensor Sources/BlendTensor/*.swift
# Everything but the downloader (Download/, and the registry that names its checksums):
# swift-crypto is not needed to read a weight file.
mapfile -t checkpoint < <(find Sources/BlendCheckpoint -name '*.swift' -not -path '*/Download/*' -not -name ModelRegistry.swift | sort)
module BlendCheckpoint "${checkpoint[@]}"
module BlendMessages Sources/BlendMessages/*.swift
module BlendImage Sources/BlendImage/*.swift
mapfile -t models < <(find Sources/BlendModels -name '*.swift' | sort)
module BlendModels "${models[@]}"

# The server's multipart parser (target multipart-form) stands on MultipartKit, compiled here
# with coverage, and on the swift-nio and swift-collections modules of the debug build, linked
# as they are (uninstrumented): `swift build` must have run first (CI's test run does).
server_flags=() server_objects=()
server_deps() {
    local debug=.build/debug yaml=.build/debug.yaml
    if [[ ! -f "$debug/Modules/NIOCore.swiftmodule" || ! -f "$yaml" ]]; then
        echo "the multipart-form target needs the debug build's NIO modules: run swift build first" >&2; exit 2
    fi
    mkdir -p "$build/server-modules" "$build/server-obj"
    # The C modules' module maps and include folders, as SwiftPM passes them to MultipartKit.
    mapfile -t server_flags < <(grep -m1 '"-module-name","MultipartKit"' "$yaml" \
        | grep -oE '"-Xcc","-fmodule-map-file=[^"]*"|"-Xcc","-I","-Xcc","[^"]*"' | tr ',' '\n' | tr -d '"')
    server_flags=(-I "$build/server-modules" -I "$debug/Modules" "${server_flags[@]}")
    local object="$build/server-obj/MultipartKit.o"
    mapfile -t sources < <(find .build/checkouts/multipart-kit/Sources/MultipartKit -name '*.swift' | sort)
    if [[ ! -f "$object" ]] || [[ -n $(find "${sources[@]}" -newer "$object" | head -1) ]]; then
        echo "==> compiling MultipartKit (${#sources[@]} files)" >&2
        swiftc -wmo -c -module-name MultipartKit -emit-module -emit-module-path "$build/server-modules/MultipartKit.swiftmodule" \
            -o "$object" -O -g -parse-as-library -swift-version 5 -suppress-warnings -sanitize=fuzzer,address \
            "${server_flags[@]}" "${sources[@]}"
    fi
    server_objects=("$object")
    local module
    for module in NIO NIOCore NIOPosix NIOHTTP1 NIOConcurrencyHelpers NIOEmbedded _NIODataStructures _NIOBase64 \
                  CNIOAtomics CNIOLinux CNIOPosix CNIOLLHTTP CNIODarwin CNIOWindows CNIOOpenBSD CNIOFreeBSD CNIOWASI \
                  Atomics _AtomicsShims Collections DequeModule OrderedCollections HeapModule BitCollections \
                  HashTreeCollections _RopeModule InternalCollectionsUtilities BasicContainers ContainersPreview TrailingElementsModule; do
        [[ -d "$debug/$module.build" ]] && mapfile -t -O "${#server_objects[@]}" server_objects < <(find "$debug/$module.build" -name '*.o')
    done
}

objects=("$build"/obj/*.o)
for target in "${targets[@]}"; do
    source="Fuzz/Targets/$target.swift"
    [[ -f "$source" ]] || { echo "no target $target (see --list)" >&2; exit 2; }
    extra=() flags=()
    # The JSON config reader lives in the pipeline, whose other dependencies the target needs not.
    [[ "$target" == config-json ]] && extra+=(Sources/BlendPipeline/ConfigFile.swift)
    if [[ "$target" == multipart-form ]]; then
        server_deps
        extra+=(Sources/BlendServer/MultipartForm.swift Sources/BlendServer/ServerError.swift)
        flags=("${server_flags[@]}")
    fi
    binary="$build/bin/$target"
    if [[ ! -x "$binary" ]] || [[ -n $(find "$source" Fuzz/Support "${extra[@]}" "${objects[@]}" "${server_objects[@]}" -newer "$binary" | head -1) ]]; then
        echo "==> linking $target" >&2
        # ld.gold warns once per ASan helper symbol; nothing to act on.
        { swiftc -module-name FuzzTarget -o "$binary" "${common[@]}" "${flags[@]}" "$source" Fuzz/Support/*.swift "${extra[@]}" \
            "${objects[@]}" "${server_objects[@]}" $libs; } 2>&1 \
            | { grep -v 'Cannot export local symbol' || true; }
        [[ -x "$binary" ]] || { echo "linking $target failed" >&2; exit 1; }
    fi
    server_objects=()
done

# Seed corpora: the committed fixtures each target's format has, and the regressions.
seed() {
    local target="$1" corpus="$build/corpus/$1"
    mkdir -p "$corpus"
    local fixtures=Tests/BlendCheckpointTests/Fixtures
    case "$target" in
        unpickler)
            for zip in "$fixtures"/*.pt "$fixtures"/wrapped/* "$fixtures"/hostile/*.pt; do
                if command -v unzip >/dev/null && unzip -l "$zip" >/dev/null 2>&1; then
                    unzip -p "$zip" '*/data.pkl' > "$corpus/$(basename "$zip").pkl" 2>/dev/null || true
                else
                    cp "$zip" "$corpus/" 2>/dev/null || true
                fi
            done ;;
        zip-archive|torchscript)
            cp "$fixtures"/*.pt "$fixtures"/wrapped/* "$corpus/"
            find "$fixtures/hostile" -name '*.pt' -exec cp {} "$corpus/" \; ;;
        torch-legacy)
            cp "$fixtures"/state_dict_legacy.pt "$fixtures"/hostile/*legacy* "$fixtures"/hostile/wrong_magic.pt \
                Tests/BlendModelsTests/Fixtures/lpips_lin_legacy.pth "$corpus/" ;;
        safetensors)
            cp "$fixtures"/*.safetensors "$fixtures"/hostile/*.safetensors "$corpus/" ;;
        checkpoint-file)
            cp "$fixtures"/*.pt "$fixtures"/*.safetensors "$fixtures"/wrapped/* "$fixtures"/hostile/* "$corpus/" ;;
        image-decode)
            cp Tests/BlendImageTests/Fixtures/png/*.png Tests/BlendImageTests/Fixtures/jpeg/*.jpg "$corpus/" ;;
        exif)
            # "Exif\0\0" + a big- and a little-endian TIFF header with one IFD0 entry: Orientation = 6.
            printf 'Exif\0\0MM\0*\0\0\0\10\0\1\1\22\0\3\0\0\0\1\0\6\0\0\0\0\0\0' > "$corpus/orientation-be"
            printf 'Exif\0\0II*\0\10\0\0\0\1\0\22\1\3\0\1\0\0\0\6\0\0\0\0\0\0\0' > "$corpus/orientation-le" ;;
        config-json)
            cp Tests/BlendModelsTests/Fixtures/*.json "$corpus/" 2>/dev/null || true
            rm -f "$corpus/clip_tokenizer.json"
            printf '{"embed_dim": 16, "image_resolution": 16, "vision_layers": 1, "vision_width": 64, "vision_patch_size": 8, "context_length": 77, "vocab_size": 49408, "transformer_width": 64, "transformer_heads": 1, "transformer_layers": 1}' > "$corpus/clip.json" ;;
        multipart-form)
            # Uploads as the page sends them: the Content-Type line, then the body.
            local b=----blend-fuzz-seed png=Tests/BlendImageTests/Fixtures/png/grey8.png
            part() { printf -- '--%s\r\nContent-Disposition: form-data; name="%s"%s\r\n%s\r\n' "$b" "$1" "$2" "$3"; }
            { printf 'multipart/form-data; boundary=%s\n' "$b"
              part prompt "" "" ; printf 'a red ball\r\n'
              part settings "" 'Content-Type: application/json\r\n'; printf '{"samples": 2, "steps": "10", "seed": 7}\r\n'
              part photo '; filename="photo.png"' 'Content-Type: image/png\r\n'; cat "$png"; printf '\r\n'
              part mask '; filename="mask.png"' 'Content-Type: image/png\r\n'; cat "$png"; printf '\r\n--%s--\r\n' "$b"
            } > "$corpus/job"
            # The first 600 bytes of a JPEG (read with head alone: `cat … | head` can die of
            # SIGPIPE, which pipefail turns into this script's failure).
            local jpegs=(Tests/BlendImageTests/Fixtures/jpeg/*.jpg)
            { printf 'multipart/form-data; boundary="%s"\n' "$b"
              part prompt "" "" ; printf 'une balle rouge \xc3\xa9\r\n'
              part photo '; filename="../../etc/passwd"' '' ; head -c 600 "${jpegs[0]}"; printf '\r\n--%s--\r\n' "$b"
            } > "$corpus/job-quoted-boundary"
            printf 'multipart/form-data; boundary=x\n--x\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--x--\r\n' > "$corpus/tiny" ;;
        clip-tokenizer)
            printf 'a red ball' > "$corpus/prompt1"
            printf 'A photo of a café &amp; a ☕, 3.14 dogs!!  <|endoftext|> the 日本 sky\n' > "$corpus/prompt2" ;;
    esac
    if [[ -d "Fuzz/Regressions/$target" ]]; then cp "Fuzz/Regressions/$target"/* "$corpus/" 2>/dev/null || true; fi
    # Keep seeds small: libFuzzer mutates whole inputs.
    find "$corpus" -type f -size +1M -delete
}

# Runs a target; afterwards removes the file it kept its input in (Fuzz/Support), which a
# crash leaves behind: /dev/shm/blend-fuzz-<pid>.bin (or /tmp/ without /dev/shm).
fuzz_run() {
    local target="$1"; shift
    local rc=0
    "$build/bin/$target" "$@" & local pid=$!
    wait "$pid" || rc=$?
    rm -f "/dev/shm/blend-fuzz-$pid.bin" "/tmp/blend-fuzz-$pid.bin"
    return "$rc"
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"
status=0
for target in "${targets[@]}"; do
    seed "$target"
    mkdir -p "$build/artifacts/$target"
    log="$build/$target.log"
    flags=(-timeout="$timeout" -report_slow_units="$timeout" -malloc_limit_mb=1024 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix="$build/artifacts/$target/")
    if $check; then
        # Each seed and regression once: any crash fails.
        if ! fuzz_run "$target" "${flags[@]}" -runs=0 "$build/corpus/$target" > "$log" 2>&1; then
            echo "FAIL $target (see $log)"; status=1; continue
        fi
        echo "ok   $target: $(grep -c . <(ls "$build/corpus/$target")) inputs"
    else
        if ! fuzz_run "$target" "${flags[@]}" -max_total_time="$seconds" "$build/corpus/$target" > "$log" 2>&1; then
            echo "FINDING $target: $(grep -m1 -E 'ERROR|Fatal error|==[0-9]+==' "$log" || tail -1 "$log") (see $log, $build/artifacts/$target/)"
            status=1
        fi
        runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
        cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
        echo "$target: ${runs:-?} executions in ${seconds} s, ${cov:-cov: ?}, corpus $(ls "$build/corpus/$target" | wc -l) inputs"
    fi
done
exit $status
