# Evaluates the Vagrantfile against a recording stand-in for Vagrant and prints, as JSON, what
# it defines for one provider: each machine's hostname, box, networks and provider settings.
require "json"

PROVIDER = ARGV.fetch(0)

class Recorder
  attr_reader :calls

  def initialize
    @calls = Hash.new { |h, k| h[k] = [] }
  end

  def method_missing(name, *args, **kwargs, &block)
    key = name.to_s.delete_suffix("=")
    @calls[key] << (kwargs.empty? ? args : args + [kwargs]) unless block
    block ? nil : self
  end

  def respond_to_missing?(*) = true
end

class VM < Recorder
  attr_accessor :hostname, :box, :boot_timeout, :box_check_update
  attr_reader :machines, :networks

  def initialize(machines = nil)
    super()
    @machines = machines
    @networks = []
  end

  def define(name)
    node = Struct.new(:vm).new(VM.new)
    yield node
    @machines[name] = node.vm
  end

  def network(kind, **options) = @networks << { "kind" => kind }.merge(options.transform_keys(&:to_s))
  def synced_folder(*) = nil

  def provider(name)
    return unless name.to_s == PROVIDER
    settings = Recorder.new
    yield settings, Struct.new(:vm).new(self)
    @provider_settings = settings.calls
  end

  def to_h
    { "hostname" => hostname, "box" => box, "networks" => networks,
      "provider" => @provider_settings || {} }
  end
end

module Vagrant
  def self.configure(_version)
    machines = {}
    yield Struct.new(:vm).new(VM.new(machines))
    puts JSON.generate(machines.transform_values(&:to_h))
  end
end

load File.expand_path(ENV.fetch("VAGRANTFILE"))
