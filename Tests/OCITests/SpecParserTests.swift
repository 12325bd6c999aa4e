import XCTest
@testable import OCI

/// A config.json shaped like `runc spec` writes it, plus rlimits and hooks.
let runcSpec = """
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": true,
    "consoleSize": {
      "height": 25,
      "width": 80
    },
    "user": {
      "uid": 1000,
      "gid": 1001,
      "umask": 18,
      "additionalGids": [
        5,
        6
      ]
    },
    "args": [
      "sh",
      "-c",
      "echo hi"
    ],
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm"
    ],
    "cwd": "/work",
    "capabilities": {
      "bounding": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ],
      "effective": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ],
      "permitted": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ],
      "ambient": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ]
    },
    "rlimits": [
      {
        "type": "RLIMIT_NOFILE",
        "hard": 1024,
        "soft": 1024
      },
      {
        "type": "RLIMIT_CORE",
        "hard": 18446744073709551615,
        "soft": 0
      }
    ],
    "noNewPrivileges": true,
    "oomScoreAdj": -500
  },
  "root": {
    "path": "rootfs",
    "readonly": true
  },
  "hostname": "runc",
  "mounts": [
    {
      "destination": "/proc",
      "type": "proc",
      "source": "proc"
    },
    {
      "destination": "/dev",
      "type": "tmpfs",
      "source": "tmpfs",
      "options": [
        "nosuid",
        "strictatime",
        "mode=755",
        "size=65536k"
      ]
    },
    {
      "destination": "/dev/pts",
      "type": "devpts",
      "source": "devpts",
      "options": [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5"
      ]
    },
    {
      "destination": "/dev/shm",
      "type": "tmpfs",
      "source": "shm",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "mode=1777",
        "size=65536k"
      ]
    },
    {
      "destination": "/dev/mqueue",
      "type": "mqueue",
      "source": "mqueue",
      "options": [
        "nosuid",
        "noexec",
        "nodev"
      ]
    },
    {
      "destination": "/sys",
      "type": "sysfs",
      "source": "sysfs",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "ro"
      ]
    },
    {
      "destination": "/sys/fs/cgroup",
      "type": "cgroup",
      "source": "cgroup",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "relatime",
        "ro"
      ]
    }
  ],
  "hooks": {
    "prestart": [
      {
        "path": "/usr/bin/fix-mounts",
        "args": [
          "fix-mounts",
          "arg1"
        ],
        "env": [
          "key1=value1"
        ]
      }
    ],
    "poststart": [
      {
        "path": "/usr/bin/notify-start",
        "timeout": 5
      }
    ],
    "poststop": [
      {
        "path": "/usr/sbin/cleanup.sh",
        "args": [
          "cleanup.sh",
          "-f"
        ]
      }
    ]
  },
  "annotations": {
    "com.example.key": "value"
  },
  "linux": {
    "resources": {
      "devices": [
        {
          "allow": false,
          "access": "rwm"
        }
      ]
    },
    "sysctl": {
      "net.ipv4.ip_forward": "1"
    },
    "devices": [
      {
        "path": "/dev/fuse",
        "type": "c",
        "major": 10,
        "minor": 229,
        "fileMode": 438,
        "uid": 0,
        "gid": 0
      }
    ],
    "namespaces": [
      {
        "type": "pid"
      },
      {
        "type": "network"
      },
      {
        "type": "ipc"
      },
      {
        "type": "uts"
      },
      {
        "type": "mount"
      },
      {
        "type": "cgroup",
        "path": "/proc/1/ns/cgroup"
      }
    ],
    "maskedPaths": [
      "/proc/acpi",
      "/proc/asound",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/sys/firmware",
      "/proc/scsi"
    ],
    "readonlyPaths": [
      "/proc/bus",
      "/proc/fs",
      "/proc/irq",
      "/proc/sys",
      "/proc/sysrq-trigger"
    ],
    "rootfsPropagation": "rslave",
    "cgroupsPath": "/mygroup"
  }
}
"""

/// Parses `json`, expecting a SpecError; returns its message ("" when parsing succeeded).
func specError(_ json: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
        _ = try SpecParser.parse(Array(json.utf8))
        XCTFail("expected a SpecError for: \(json)", file: file, line: line)
        return ""
    } catch {
        return error.message
    }
}

/// A minimal valid document with `process` replaced by `process`.
func minimal(process: String = #"{"args": ["sh"], "cwd": "/"}"#, extra: String = "") -> String {
    #"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": \#(process)\#(extra)}"#
}

final class SpecParserTests: XCTestCase {
    func testRuncStyleConfigParses() throws {
        let spec = try SpecParser.parse(Array(runcSpec.utf8))
        XCTAssertEqual(spec.ociVersion, "1.0.2-dev")
        XCTAssertEqual(spec.hostname, "runc")
        XCTAssertEqual(spec.root?.path, "rootfs")
        XCTAssertEqual(spec.root?.readonly, true)

        let p = try XCTUnwrap(spec.process)
        XCTAssertEqual(p.args, ["sh", "-c", "echo hi"])
        XCTAssertEqual(p.env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"])
        XCTAssertEqual(p.cwd, "/work")
        XCTAssertTrue(p.terminal)
        XCTAssertEqual(p.consoleSize?.height, 25)
        XCTAssertEqual(p.consoleSize?.width, 80)
        XCTAssertEqual(p.uid, 1000)
        XCTAssertEqual(p.gid, 1001)
        XCTAssertEqual(p.umask, 18)
        XCTAssertEqual(p.additionalGids, [5, 6])
        XCTAssertTrue(p.noNewPrivileges)
        XCTAssertEqual(p.oomScoreAdj, -500)
        XCTAssertEqual(p.capabilities?.bounding, ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        XCTAssertEqual(p.capabilities?.ambient, ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        XCTAssertEqual(p.capabilities?.inheritable, [])
        XCTAssertEqual(p.rlimits, [
            Process.Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024),
            Process.Rlimit(type: "RLIMIT_CORE", hard: UInt64.max, soft: 0),
        ])

        XCTAssertEqual(spec.mounts.count, 7)
        XCTAssertEqual(spec.mounts[0], Spec.Mount(destination: "/proc", type: "proc", source: "proc", options: []))
        XCTAssertEqual(spec.mounts[1].destination, "/dev")
        XCTAssertEqual(spec.mounts[1].options, ["nosuid", "strictatime", "mode=755", "size=65536k"])
        XCTAssertFalse(spec.mounts[1].isBind)
        XCTAssertEqual(spec.mounts.map(\.destination),
                       ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"])

        XCTAssertEqual(spec.linux.namespaces.map(\.type), ["pid", "network", "ipc", "uts", "mount", "cgroup"])
        XCTAssertEqual(spec.linux.namespaces.last?.path, "/proc/1/ns/cgroup")
        XCTAssertNil(spec.linux.namespaces.first?.path)
        XCTAssertTrue(spec.linux.has("mount"))
        XCTAssertFalse(spec.linux.has("user"))
        XCTAssertEqual(spec.linux.maskedPaths.count, 10)
        XCTAssertEqual(spec.linux.maskedPaths.first, "/proc/acpi")
        XCTAssertEqual(spec.linux.readonlyPaths, ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        XCTAssertEqual(spec.linux.sysctl, ["net.ipv4.ip_forward": "1"])
        XCTAssertEqual(spec.linux.rootfsPropagation, "rslave")
        XCTAssertEqual(spec.linux.cgroupsPath, "/mygroup")
        XCTAssertNotNil(spec.linux.resources?["devices"])
        XCTAssertEqual(spec.linux.devices.count, 1)
        XCTAssertEqual(spec.linux.devices.first?.path, "/dev/fuse")
        XCTAssertEqual(spec.linux.devices.first?.major, 10)
        XCTAssertEqual(spec.linux.devices.first?.minor, 229)
        XCTAssertEqual(spec.linux.devices.first?.fileMode, 0o666)

        XCTAssertEqual(spec.hooks.prestart.count, 1)
        XCTAssertEqual(spec.hooks.prestart.first?.path, "/usr/bin/fix-mounts")
        XCTAssertEqual(spec.hooks.prestart.first?.args, ["fix-mounts", "arg1"])
        XCTAssertEqual(spec.hooks.prestart.first?.env, ["key1=value1"])
        XCTAssertNil(spec.hooks.prestart.first?.timeout)
        XCTAssertEqual(spec.hooks.poststart.first?.timeout, 5)
        XCTAssertEqual(spec.hooks.poststop.first?.args, ["cleanup.sh", "-f"])
        XCTAssertTrue(spec.hooks.createRuntime.isEmpty)

        XCTAssertEqual(spec.annotations, ["com.example.key": "value"])
        // The whole document is kept for the guest.
        XCTAssertEqual(spec.raw, try JSONParser.parse(runcSpec))
    }

    func testDefaultsWhenOptionalFieldsAreAbsent() throws {
        let spec = try SpecParser.parse(Array(minimal().utf8))
        let p = try XCTUnwrap(spec.process)
        XCTAssertEqual(p.args, ["sh"])
        XCTAssertEqual(p.env, [])
        XCTAssertEqual(p.uid, 0)
        XCTAssertFalse(p.terminal)
        XCTAssertEqual(spec.root?.readonly, false)
        XCTAssertTrue(spec.mounts.isEmpty)
        XCTAssertTrue(spec.linux.namespaces.isEmpty)
        XCTAssertNil(spec.hostname)
    }

    func testInvalidJSONReportsLineAndColumn() {
        // Trailing comma inside the args array on line 3; the parser stops at the "]" in column 17.
        let doc = "{\n  \"ociVersion\": \"1.0.2\",\n  \"args\": [\"sh\",],\n  \"x\": 1\n}\n"
        do {
            _ = try JSONParser.parse(doc)
            XCTFail("trailing comma accepted")
        } catch {
            XCTAssertEqual(error.line, 3, "\(error)")
            XCTAssertEqual(error.column, 17, "\(error)")
            XCTAssertTrue(error.description.contains("line 3"), error.description)
        }
        let msg = specError(doc)
        XCTAssertTrue(msg.hasPrefix("config.json: invalid JSON at line 3"), msg)
    }

    func testInvalidJSONOnFirstLineAndUnterminatedDocument() {
        do { _ = try JSONParser.parse("{\"a\": tru}"); XCTFail("accepted") } catch {
            XCTAssertEqual(error.line, 1)
        }
        do { _ = try JSONParser.parse("{\n\"a\": [1, 2\n"); XCTFail("accepted") } catch {
            XCTAssertGreaterThanOrEqual(error.line, 2, "\(error)")
            XCTAssertFalse(error.reason.isEmpty)
        }
        do { _ = try JSONParser.parse(""); XCTFail("accepted") } catch {
            XCTAssertFalse(error.description.isEmpty)
        }
        // Multi-byte characters before the error: the line is still right.
        do { _ = try JSONParser.parse("[\"héllo\",\n\"wörld\",\n}"); XCTFail("accepted") } catch {
            XCTAssertEqual(error.line, 3, "\(error)")
        }
    }

    func testWrongTypeNamesJSONPath() {
        XCTAssertEqual(specError(minimal(process: #"{"args": ["sh", 5]}"#)),
                       "config.json: process.args[1]: expected string, got number")
        XCTAssertEqual(specError(minimal(process: #"{"args": ["sh"], "terminal": "yes"}"#)),
                       "config.json: process.terminal: expected boolean, got string")
        XCTAssertEqual(specError(minimal(process: #"{"args": ["sh"], "user": {"uid": "root"}}"#)),
                       "config.json: process.user.uid: expected integer, got string")
        XCTAssertEqual(specError(minimal(process: #"{"args": ["sh"], "user": {"uid": -1}}"#)),
                       "config.json: process.user.uid: -1 is out of range")
        XCTAssertEqual(specError(minimal(process: #"{"args": "sh"}"#)),
                       "config.json: process.args: expected array, got string")
        XCTAssertEqual(specError(minimal(process: #""sh""#)),
                       "config.json: process: expected object, got string")
        XCTAssertEqual(specError(minimal(extra: #", "mounts": [{"destination": "/a"}, {"destination": 3}]"#)),
                       "config.json: mounts[1].destination: expected string, got number")
        XCTAssertEqual(specError(minimal(extra: #", "annotations": {"a": "b", "c": true}"#)),
                       "config.json: annotations.c: expected string, got boolean")
        XCTAssertEqual(specError(minimal(extra: #", "linux": {"maskedPaths": [1]}"#)),
                       "config.json: linux.maskedPaths[0]: expected string, got number")
        XCTAssertEqual(specError("[1, 2]"), "config.json: expected a JSON object at the top level")
    }

    func testOCIVersions() throws {
        for ok in ["1.0.0", "1.0.2", "1.1.0", "1.2.0", "1.0.2-dev", "1.0.0-rc5"] {
            XCTAssertNoThrow(try SpecParser.checkVersion(ok), ok)
            let doc = #"{"ociVersion": "\#(ok)", "process": {"args": ["sh"]}}"#
            XCTAssertEqual(try SpecParser.parse(Array(doc.utf8)).ociVersion, ok)
        }
        for bad in ["2.0.0", "0.9.0", "", "1", "v1.0.0", "1.x"] {
            let msg = specError(#"{"ociVersion": "\#(bad)", "process": {"args": ["sh"]}}"#)
            XCTAssertTrue(msg.contains("unsupported ociVersion \"\(bad)\""), "\(bad): \(msg)")
        }
        XCTAssertEqual(specError(#"{"process": {"args": ["sh"]}}"#), "config.json: ociVersion is required")
    }

    func testEmptyArgs() {
        XCTAssertEqual(specError(minimal(process: #"{"args": []}"#)), "config.json: process.args must not be empty")
        XCTAssertEqual(specError(minimal(process: #"{"cwd": "/"}"#)), "config.json: process.args must not be empty")
        XCTAssertEqual(specError(minimal(process: #"{"args": [""]}"#)), "config.json: process.args must not be empty")
    }

    func testRelativeCwd() {
        XCTAssertEqual(specError(minimal(process: #"{"args": ["sh"], "cwd": "tmp"}"#)),
                       #"config.json: process.cwd: "tmp" is not an absolute path"#)
    }

    func testUnknownNamespace() {
        XCTAssertEqual(specError(minimal(extra: #", "linux": {"namespaces": [{"type": "pid"}, {"type": "bogus"}]}"#)),
                       #"config.json: linux.namespaces[1].type: unknown namespace "bogus""#)
    }

    func testUnknownRlimit() {
        let p = #"{"args": ["sh"], "rlimits": [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]}"#
        XCTAssertEqual(specError(minimal(process: p)), #"config.json: process.rlimits[0].type: unknown rlimit "RLIMIT_BOGUS""#)
        let neg = #"{"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE", "hard": -1, "soft": 1}]}"#
        XCTAssertEqual(specError(minimal(process: neg)),
                       "config.json: process.rlimits[0].hard: expected unsigned integer, got number")
    }

    func testMissingRootPath() {
        XCTAssertEqual(specError(#"{"ociVersion": "1.0.2", "root": {"readonly": true}}"#), "config.json: root.path is required")
        XCTAssertEqual(specError(#"{"ociVersion": "1.0.2", "root": {"path": ""}}"#), "config.json: root.path must not be empty")
    }

    func testRelativeMountDestinationAndHookPath() {
        XCTAssertEqual(specError(minimal(extra: #", "mounts": [{"destination": "proc", "type": "proc"}]"#)),
                       #"config.json: mounts[0].destination: "proc" is not an absolute path"#)
        XCTAssertEqual(specError(minimal(extra: #", "hooks": {"prestart": [{"path": "hook"}]}"#)),
                       #"config.json: hooks.prestart[0].path: "hook" is not an absolute path"#)
        XCTAssertEqual(specError(minimal(extra: #", "hooks": {"poststop": [{"path": "/h", "timeout": 0}]}"#)),
                       "config.json: hooks.poststop[0].timeout must be positive")
    }

    func testProcessJSONForExec() throws {
        let p = try SpecParser.parseProcess(Array(#"{"args": ["ls", "-l"], "env": ["A=1"], "cwd": "/tmp", "terminal": true}"#.utf8))
        XCTAssertEqual(p.args, ["ls", "-l"])
        XCTAssertEqual(p.env, ["A=1"])
        XCTAssertEqual(p.cwd, "/tmp")
        XCTAssertTrue(p.terminal)
        do {
            _ = try SpecParser.parseProcess(Array(#"{"args": []}"#.utf8))
            XCTFail("empty args accepted")
        } catch {
            XCTAssertEqual(error.message, "process.json: args must not be empty")
        }
        do {
            _ = try SpecParser.parseProcess(Array(#"{"args": ["ls"], "cwd": 1}"#.utf8))
            XCTFail("numeric cwd accepted")
        } catch {
            XCTAssertEqual(error.message, "process.json: cwd: expected string, got number")
        }
    }
}
