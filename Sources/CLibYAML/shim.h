// libyaml (Debian: libyaml-dev), the YAML 1.1 parser the payload spec and
// seccomp profile readers compose documents with.
#include <yaml.h>
