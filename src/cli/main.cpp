// TEMPORARY placeholder
#include "daemon.hpp"
int main() { return epmdx::server::run_daemon({}); }
