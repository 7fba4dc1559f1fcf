# Drive Ruby's net-scp (ruby-net-scp) for the end-to-end tests.
#
# usage: ruby net_scp.rb HOST PORT USER KEY KNOWN_HOSTS OP SRC DST
# OP: put, get, put-r, get-r ("-r": recursive, with times and modes preserved).
# Exit status 0 on success; on failure the error's message on stderr and 1.
require 'net/scp'

host, port, user, key, known_hosts, op, src, dst = ARGV
opts = {
  port: port.to_i, keys: [key], keys_only: true, auth_methods: ['publickey'],
  user_known_hosts_file: [known_hosts], global_known_hosts_file: [],
  verify_host_key: :always, non_interactive: true, config: false,
}
recursive = op.end_with?('-r')
flags = recursive ? { recursive: true, preserve: true } : {}
begin
  Net::SCP.start(host, user, opts) do |scp|
    case op
    when 'put', 'put-r' then scp.upload!(src, dst, flags)
    when 'get', 'get-r' then scp.download!(src, dst, flags)
    else abort "net_scp.rb: unknown op #{op}"
    end
  end
rescue Net::SCP::Error, Net::SSH::Exception, SystemCallError => e
  warn "#{e.class}: #{e.message}"
  exit 1
end
