package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machineInfo describes where the figures were taken.
type machineInfo struct {
	nproc     string
	cpu       string
	memory    string
	kernel    string
	goVersion string
	postgres  string
	moto      string
	date      string
	loadStart string
	loadEnd   string
}

func machine() machineInfo {
	m := machineInfo{
		nproc:     strconv.Itoa(runtime.NumCPU()),
		cpu:       "unknown",
		memory:    "unknown",
		kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		loadStart: loadAverage(),
	}
	if out, err := exec.Command("nproc").Output(); err == nil {
		m.nproc = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.goVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.cpu = strings.TrimSpace(v)
			break
		}
	}
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
			f := strings.Fields(v)
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
				m.memory = strconv.FormatFloat(kb/1024/1024, 'f', 1, 64) + " GiB"
			}
		}
	}
	return m
}

// versions fills in what the stack runs.
func (m *machineInfo) versions(s *stack) {
	if out, err := exec.Command(filepath.Join(s.Postgres.BinDir, "postgres"), "--version").Output(); err == nil {
		m.postgres = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("python3", "-c", "import moto; print(moto.__version__)").Output(); err == nil {
		m.moto = "moto " + string(bytes.TrimSpace(out))
	}
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// runnableTasks is the number of currently runnable tasks, the "R" of the
// fourth field "R/T" of /proc/loadavg; NaN if unreadable.
func runnableTasks() float64 {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 4 {
		return math.NaN()
	}
	r, _, _ := strings.Cut(f[3], "/")
	n, err := strconv.ParseFloat(r, 64)
	if err != nil {
		return math.NaN()
	}
	return n
}
