# osfarm boot image check, run by the image's own /bin/sh after switch_root: shows the root works
# (and is writable), then prints what the boot fetched and powers off.
B=/run/osfarm/bin/busybox
echo "osfarm-boot: $($B cut -d' ' -f1 /proc/uptime)s: in the snapshot's root"
echo "booted-$$" > /root/osfarm-boot-written 2>/dev/null || echo "booted-$$" > /osfarm-boot-written
if [ -e /run/osfarm/scratch/upper/root/osfarm-boot-written ] || [ -e /run/osfarm/scratch/upper/osfarm-boot-written ]; then
  W=upper
else
  W=missing
fi
echo "OSFARM-BOOT-OK debian_version=$(cat /etc/debian_version) write=$W"
# the mount client rewrites its stats file every second
$B sleep 1.5
echo "OSFARM-BOOT-STATS $(cat /run/osfarm/stats.json)"
echo "osfarm-boot: powering off"
$B sync
$B poweroff -f
