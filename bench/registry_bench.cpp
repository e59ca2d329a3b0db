// SPDX-License-Identifier: Apache-2.0
// Micro-benchmarks of the node table at 1, 1000 and 100000 registered nodes.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace {

using epmdx::Registry;

std::string node_name(std::size_t index) {
    return "node" + std::to_string(index) + "@host";
}

epmdx::wire::NodeInfo node_info(std::string name) {
    epmdx::wire::NodeInfo info;
    info.name = std::move(name);
    info.port = 40000;
    return info;
}

// A registry holding `count` active nodes, with a clock that never changes.
Registry populated(std::size_t count) {
    Registry registry(Registry::default_old_capacity, [] { return std::uint32_t{1700000000}; });
    for (std::size_t i = 0; i < count; ++i) {
        registry.add(node_info(node_name(i)), static_cast<int>(i), nullptr);
    }
    return registry;
}

// More names than the old list holds, so the steady state includes dropping its oldest entry.
std::vector<epmdx::wire::NodeInfo> churn_nodes() {
    std::vector<epmdx::wire::NodeInfo> nodes;
    for (std::size_t i = 0; i < 4096; ++i) {
        nodes.push_back(node_info("churn" + std::to_string(i) + "@host"));
    }
    return nodes;
}

// One node registering and going away again while `range(0)` others stay registered.
void registry_add_remove(benchmark::State& state) {
    Registry registry = populated(static_cast<std::size_t>(state.range(0)));
    const std::vector<epmdx::wire::NodeInfo> nodes = churn_nodes();
    std::size_t next = 0;
    for (auto _ : state) {
        const epmdx::wire::NodeInfo& node = nodes[next++ % nodes.size()];
        benchmark::DoNotOptimize(registry.add(node, 1, nullptr));
        benchmark::DoNotOptimize(registry.remove(node.name));
    }
}

// The same node coming back: the name is found on the old list each time.
void registry_reregister(benchmark::State& state) {
    Registry registry = populated(static_cast<std::size_t>(state.range(0)));
    const epmdx::wire::NodeInfo node = node_info("returning@host");
    for (auto _ : state) {
        benchmark::DoNotOptimize(registry.add(node, 1, nullptr));
        benchmark::DoNotOptimize(registry.remove(node.name));
    }
}

void registry_find(benchmark::State& state) {
    const auto count = static_cast<std::size_t>(state.range(0));
    const Registry registry = populated(count);
    std::vector<std::string> names;
    for (std::size_t i = 0; i < count; i += (count + 1023) / 1024) {
        names.push_back(node_name(i));
    }
    std::size_t next = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(registry.find(names[next++ % names.size()]));
    }
}

void registry_find_missing(benchmark::State& state) {
    const Registry registry = populated(static_cast<std::size_t>(state.range(0)));
    const std::string missing = "absent@host";
    for (auto _ : state) {
        benchmark::DoNotOptimize(registry.find(missing));
    }
}

// NAMES right after a change: the text is rebuilt.
void registry_names_text_rebuild(benchmark::State& state) {
    Registry registry = populated(static_cast<std::size_t>(state.range(0)));
    const epmdx::wire::NodeInfo node = node_info("toggled@host");
    std::size_t bytes = 0;
    for (auto _ : state) {
        registry.add(node, 1, nullptr);
        bytes += registry.names_text()->size();
        registry.remove(node.name);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

// NAMES with nothing changed since the last one: the cached text is shared.
void registry_names_text_cached(benchmark::State& state) {
    const Registry registry = populated(static_cast<std::size_t>(state.range(0)));
    benchmark::DoNotOptimize(registry.names_text());
    for (auto _ : state) {
        benchmark::DoNotOptimize(registry.names_text());
    }
}

void registry_dump_text(benchmark::State& state) {
    const Registry registry = populated(static_cast<std::size_t>(state.range(0)));
    std::size_t bytes = 0;
    for (auto _ : state) {
        bytes += registry.dump_text().size();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void node_counts(benchmark::internal::Benchmark* bench) {
    bench->Arg(1)->Arg(1000)->Arg(100000);
}

BENCHMARK(registry_add_remove)->Apply(node_counts);
BENCHMARK(registry_reregister)->Apply(node_counts);
BENCHMARK(registry_find)->Apply(node_counts);
BENCHMARK(registry_find_missing)->Apply(node_counts);
BENCHMARK(registry_names_text_rebuild)->Apply(node_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(registry_names_text_cached)->Apply(node_counts);
BENCHMARK(registry_dump_text)->Apply(node_counts)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
