# gnuplot -e "dat='throughput.dat'; out='throughput.png'" throughput.gp
# Events per second per sink: dcevents, the Python peer and the ceiling.
set terminal pngcairo size 900,520 font "sans,10"
set output out
set title "Events per second, end to end (TLS websocket in, 2 cores, loopback)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [1000:*]
set format y "%.0s%c"
set ylabel "events/s (log scale)"
set grid ytics
set key top right
plot dat using 2:xtic(1) title "dcevents" lc rgb "#1f77b4", \
     '' using 3 title "Python peer (websocket-client)" lc rgb "#ff7f0e", \
     '' using 4 title "ceiling" lc rgb "#7f7f7f", \
     '' using 0:2:(sprintf("%.0fk", $2/1000)) with labels offset -4.2,0.7 notitle, \
     '' using 0:3:(sprintf("%.1fk", $3/1000)) with labels offset 0,0.7 notitle, \
     '' using 0:4:(sprintf("%.0fk", $4/1000)) with labels offset 4.2,0.7 notitle
