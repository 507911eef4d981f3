FROM busybox
ENV A B C
ENV A=1 B="2 3" C=4\ 5 D='6 7'
ENV E="x\"y" F=
LABEL a=b "c d"=e 'f'="g h"
LABEL legacy value here
ENV  spaced   value  
